// Command coldbench measures a get_peers lookup from process start with
// no saved state, ours (`node peers --state-dir=`) against anacrolix/dht's
// own (the anacrolixpeers program beside this one), in one network of
// anacrolix/dht/v2 servers with a wide-area round trip, on loopback only:
//
//	go run ./internal/bench/coldbench [-nodes 500] [-runs 9] [-rtt 50ms] [-json out.json]
//
// This process hosts the network: -nodes servers (dhttest.StartNetwork) on
// 127.<net>.<i/250>.<i%250+1>, joined through the first three, then 8 of
// them announce one info-hash, each on its own port. Then every datagram a
// server sends waits: -rtt to an address outside the network (the
// lookers, whose own sockets are not delayed, so each of their round trips
// takes -rtt) and -rtt/2 to another server.
//
// Each run starts a fresh process, alternately ours and anacrolix's (who
// goes first alternates too), bootstrapping from the network's three
// entry servers only (the public routers are off in both), and reads the
// peers it prints on stdout: the times from exec to the first and to the
// 8th distinct announced peer are the figures. The process is stopped
// (SIGTERM, then SIGKILL) once it has all 8, or after -timeout.
package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/internal/bench/benchfmt"
	"node/internal/dhttest"
)

const (
	announcers = 8
	// targetRatio is the most our median time to all 8 peers may be of
	// anacrolix's.
	targetRatio = 0.7
	// setupTimeout bounds forming the network and the announces.
	setupTimeout = 3 * time.Minute
	// stopGrace is how long a looker has to exit after SIGTERM.
	stopGrace   = 5 * time.Second
	hostsPerNet = 250
	// announceRounds bounds the announce rounds until all 8 peers are
	// findable.
	announceRounds = 5
	// lookerSubnet is the third byte of the lookers' addresses: past the
	// network's, which take 0..3.
	lookerSubnet = 4
)

type options struct {
	nodes      int
	runs       int
	infoHashes int
	rtt        time.Duration
	timeout    time.Duration // per run
	netByte    int           // the network's addresses are 127.<netByte>.x.y
	jsonOut    string
	goCmd      string
	quiet      bool
}

func main() {
	var o options
	flag.IntVar(&o.nodes, "nodes", 500, "anacrolix servers in the network")
	flag.IntVar(&o.runs, "runs", 9, "lookups of each implementation")
	flag.IntVar(&o.infoHashes, "infohashes", 1, "info-hashes, each announced by 8 servers; run r looks up the (r mod `N`)-th")
	flag.DurationVar(&o.rtt, "rtt", 50*time.Millisecond, "round trip between a looker and a server (half of it between servers)")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Second, "stop a lookup that has not found all 8 peers after this long")
	flag.IntVar(&o.netByte, "net", 90, "the network's addresses are 127.`N`.x.y")
	flag.StringVar(&o.jsonOut, "json", "", "write the figures to this `file` (shared bench schema)")
	flag.StringVar(&o.goCmd, "go", "go", "the go command, to build the two lookers")
	budget := flag.Duration("budget", 110*time.Second, "stop everything after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *budget)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldbench:", err)
		cancel()
		os.Exit(1)
	}
	doc := benchfmt.File{Sections: []benchfmt.Section{res.section(o)}}
	printTable(os.Stdout, res, o)
	if o.jsonOut != "" {
		if err := benchfmt.Write(o.jsonOut, doc); err != nil {
			fmt.Fprintln(os.Stderr, "coldbench:", err)
			cancel()
			os.Exit(1)
		}
	}
}

// lookup is one looker process's run: the times from exec to the first
// query a server read, to the first peer and to the 8th, each negative if
// not reached.
type lookup struct {
	query, first, eighth time.Duration
	peers                int
}

type results struct {
	ours, anacrolix []lookup
	setup           time.Duration
	holders         []int // per info-hash, the servers storing any of its peers
}

func (o options) logf(format string, args ...any) {
	if !o.quiet {
		fmt.Fprintf(os.Stderr, "coldbench: "+format+"\n", args...)
	}
}

func run(ctx context.Context, o options) (*results, error) {
	if o.infoHashes < 1 || o.nodes < 4+announcers*o.infoHashes || o.nodes > 4*hostsPerNet || o.runs < 1 {
		return nil, fmt.Errorf("-nodes %d -runs %d -infohashes %d: want a run, an info-hash, 4+8 nodes per info-hash and at most %d nodes",
			o.nodes, o.runs, o.infoHashes, 4*hostsPerNet)
	}
	tmp, err := os.MkdirTemp("", "coldbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	nodeBin, apBin := filepath.Join(tmp, "node"), filepath.Join(tmp, "anacrolixpeers")
	for _, b := range [][2]string{{nodeBin, "node/cmd/node"}, {apBin, "node/internal/bench/coldbench/anacrolixpeers"}} {
		cmd := exec.CommandContext(ctx, o.goCmd, "build", "-o", b[0], b[1])
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("building %s: %w", b[1], err)
		}
	}

	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	ip := func(i int) netip.Addr {
		return netip.AddrFrom4([4]byte{127, byte(o.netByte), byte(i / hostsPerNet), byte(i%hostsPerNet + 1)})
	}
	nw, err := dhttest.StartNetwork(sctx, o.nodes, ip)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	defer nw.Close()
	ihs := make([][20]byte, o.infoHashes)
	wants := make([]map[netip.AddrPort]bool, o.infoHashes)
	res := &results{}
	for k := range ihs {
		ihs[k] = sha1.Sum(fmt.Appendf(nil, "coldbench %d %d", o.nodes, k))
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for k := range ihs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want, holders, err := announce(sctx, nw, ihs[k], k, o.infoHashes)
			mu.Lock()
			defer mu.Unlock()
			wants[k] = want
			res.holders = append(res.holders, holders)
			if err != nil && first == nil {
				first = fmt.Errorf("info-hash %d: %w", k, err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	res.setup = time.Since(began)
	o.logf("%d servers formed and %d info-hashes announced by 8 each in %v; servers storing each one's peers: %v",
		o.nodes, o.infoHashes, res.setup.Round(time.Millisecond), res.holders)

	inside := map[netip.AddrPort]bool{}
	for _, a := range nw.Addrs {
		inside[a] = true
	}
	for _, dc := range nw.Conns {
		dc.SetDelay(func(to net.Addr) time.Duration {
			if ua, ok := to.(*net.UDPAddr); ok && inside[unmap(ua.AddrPort())] {
				return o.rtt / 2
			}
			return o.rtt
		})
	}

	var boot []string
	for _, a := range nw.Boot {
		boot = append(boot, a.String())
	}
	bootList := strings.Join(boot, ",")
	// The lookers listen outside the network's addresses.
	oursIP := netip.AddrFrom4([4]byte{127, byte(o.netByte), lookerSubnet, 1})
	theirsIP := netip.AddrFrom4([4]byte{127, byte(o.netByte), lookerSubnet, 2})
	oursAt, theirsAt := oursIP.String()+":0", theirsIP.String()+":0"
	// The first datagram any server reads from the looker's address:
	// what the process took to start, apart from its lookup.
	var heard struct {
		sync.Mutex
		from netip.Addr
		at   time.Time
	}
	for _, dc := range nw.Conns {
		dc.OnRead(func(from net.Addr) {
			ua, ok := from.(*net.UDPAddr)
			if !ok {
				return
			}
			heard.Lock()
			if heard.at.IsZero() && ua.AddrPort().Addr().Unmap() == heard.from {
				heard.at = time.Now()
			}
			heard.Unlock()
		})
	}
	for r := range o.runs {
		h := r % o.infoHashes
		ihHex := hex.EncodeToString(ihs[h][:])
		ours := []string{nodeBin, "peers", "--state-dir=", "--config=", "--listen", oursAt, "--listen6", "none",
			"--bootstrap", bootList, "--timeout", o.timeout.String(), ihHex}
		theirs := []string{apBin, "-listen", theirsAt, "-bootstrap", bootList, "-timeout", o.timeout.String(), ihHex}
		order := []bool{true, false}
		if r%2 == 1 {
			order = []bool{false, true}
		}
		for _, isOurs := range order {
			argv, name, from := theirs, "anacrolix", theirsIP
			if isOurs {
				argv, name, from = ours, "ours", oursIP
			}
			heard.Lock()
			heard.from, heard.at = from, time.Time{}
			heard.Unlock()
			l, err := runLooker(ctx, argv, wants[h], o.timeout+stopGrace, func(start time.Time) time.Duration {
				heard.Lock()
				defer heard.Unlock()
				if heard.at.IsZero() {
					return -1
				}
				return heard.at.Sub(start)
			})
			if err != nil {
				return nil, fmt.Errorf("%s run %d: %w", name, r+1, err)
			}
			o.logf("run %d (info-hash %d) %-9s: %d peers, 1st query %s ms, 1st peer %s ms, 8th %s ms", r+1, h, name, l.peers, fmtMs(ms(l.query)), fmtMs(ms(l.first)), fmtMs(ms(l.eighth)))
			if isOurs {
				res.ours = append(res.ours, l)
			} else {
				res.anacrolix = append(res.anacrolix, l)
			}
		}
	}
	return res, nil
}

// announce makes 8 servers spread over the network, none of the entry
// three nor those of the other info-hashes (ih is the k-th of n), announce
// ih, each on a port of its own, until a lookup from
// inside the network finds all 8: anacrolix stores an announce on a
// goroutine of its own, and an announcer's traversal, run while the others
// change the tables it walks, may end short of the nearest nodes, so those
// still missing announce again. It returns the 8 peers and how many
// servers store any of them.
func announce(ctx context.Context, nw *dhttest.Network, ih [20]byte, k, n int) (map[netip.AddrPort]bool, int, error) {
	peerOf := map[netip.AddrPort]int{} // peer -> announcer
	for j := range announcers {
		i := 4 + (k*announcers+j)*(len(nw.Servers)-4)/(n*announcers)
		peerOf[netip.AddrPortFrom(nw.Addrs[i].Addr(), uint16(7000+j))] = i
	}
	missing := slices.Collect(maps.Keys(peerOf))
	for round := 0; ctx.Err() == nil && round < announceRounds; round++ {
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			first error
		)
		for _, p := range missing {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := nw.Announce(ctx, peerOf[p], ih, int(p.Port()))
				mu.Lock()
				defer mu.Unlock()
				if err != nil && first == nil {
					first = fmt.Errorf("announce from server %d: %w", peerOf[p], err)
				}
			}()
		}
		wg.Wait()
		if first != nil {
			return nil, 0, first
		}
		got, err := findAll(ctx, nw.Servers[3], ih)
		if err != nil {
			return nil, 0, err
		}
		missing = missing[:0]
		for p := range peerOf {
			if !got[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			holders := 0
			for _, s := range nw.Servers {
				if len(s.PeerStore().GetPeers(ih)) > 0 {
					holders++
				}
			}
			want := map[netip.AddrPort]bool{}
			for p := range peerOf {
				want[p] = true
			}
			return want, holders, nil
		}
	}
	return nil, 0, fmt.Errorf("announced peers %v not findable after %d rounds: %v", missing, announceRounds, ctx.Err())
}

// findAll is every peer a get_peers traversal by s finds for ih.
func findAll(ctx context.Context, s *adht.Server, ih [20]byte) (map[netip.AddrPort]bool, error) {
	a, err := s.AnnounceTraversal(ih)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	stop := context.AfterFunc(ctx, a.Close)
	defer stop()
	got := map[netip.AddrPort]bool{}
	for pv := range a.Peers {
		for _, p := range pv.Peers {
			ip, _ := netip.AddrFromSlice(p.IP)
			got[netip.AddrPortFrom(ip.Unmap(), uint16(p.Port))] = true
		}
	}
	return got, ctx.Err()
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// runLooker starts argv and times, from just before exec, the first and
// the 8th distinct peer of want it prints on stdout, one address a line.
// It stops the process once it has all 8 or after limit; a process that
// exits without them is a run that found fewer, not an error, unless it
// found none and failed.
func runLooker(ctx context.Context, argv []string, want map[netip.AddrPort]bool, limit time.Duration, heard func(start time.Time) time.Duration) (lookup, error) {
	l := lookup{query: -1, first: -1, eighth: -1}
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return l, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return l, err
	}
	type line struct {
		s  string
		at time.Duration
	}
	lines := make(chan line)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- line{sc.Text(), time.Since(start)}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	seen := map[netip.AddrPort]bool{}
	ended := false
wait:
	for l.peers < announcers {
		select {
		case ln, ok := <-lines:
			if !ok {
				ended = true
				break wait
			}
			ap, err := netip.ParseAddrPort(strings.TrimSpace(ln.s))
			if err != nil || !want[unmap(ap)] || seen[unmap(ap)] {
				continue
			}
			seen[unmap(ap)] = true
			l.peers++
			if l.peers == 1 {
				l.first = ln.at
			}
			if l.peers == announcers {
				l.eighth = ln.at
			}
		case <-timer.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(stopGrace):
		_ = cmd.Process.Kill()
		werr = <-done
	}
	l.query = heard(start)
	if ended && l.peers == 0 && werr != nil {
		return l, fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), werr, strings.TrimSpace(stderr.String()))
	}
	return l, ctx.Err()
}

// ms is d in milliseconds, infinite when not reached (negative).
func ms(d time.Duration) float64 {
	if d < 0 {
		return math.Inf(1)
	}
	return d.Seconds() * 1e3
}

// pct is the p-th percentile (nearest rank) of ls by f; a lookup that
// never got there counts as slower than any.
func pct(ls []lookup, f func(lookup) time.Duration, p float64) float64 {
	if len(ls) == 0 {
		return math.Inf(1)
	}
	xs := make([]float64, len(ls))
	for i, l := range ls {
		xs[i] = ms(f(l))
	}
	slices.Sort(xs)
	i := int(math.Ceil(p/100*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

func queryOf(l lookup) time.Duration  { return l.query }
func firstOf(l lookup) time.Duration  { return l.first }
func eighthOf(l lookup) time.Duration { return l.eighth }

func fmtMs(x float64) string {
	if math.IsInf(x, 1) {
		return "none"
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

// finite is x for the JSON file, which has no infinity: -1 there means
// not reached.
func finite(x float64) float64 {
	if math.IsInf(x, 1) {
		return -1
	}
	return x
}

// ratio is ours' median time to all 8 over anacrolix's (infinite if ours
// never got there, 0 if only anacrolix never did).
func (r *results) ratio() float64 {
	o, a := pct(r.ours, eighthOf, 50), pct(r.anacrolix, eighthOf, 50)
	switch {
	case math.IsInf(o, 1):
		return math.Inf(1)
	case math.IsInf(a, 1):
		return 0
	}
	return o / a
}

func (r *results) section(o options) benchfmt.Section {
	row := func(metric string, f func(lookup) time.Duration, p float64) benchfmt.Row {
		a := finite(pct(r.anacrolix, f, p))
		return benchfmt.Row{Metric: metric, Unit: "ms", Ours: finite(pct(r.ours, f, p)), Anacrolix: &a, Better: "lower"}
	}
	met := r.ratio() <= targetRatio
	eighth := row("cold lookup, 8th peer, median", eighthOf, 50)
	eighth.Target = "<= " + strconv.FormatFloat(targetRatio, 'f', -1, 64) + "x"
	eighth.Met = &met
	all := func(ls []lookup) float64 {
		n := 0
		for _, l := range ls {
			if l.peers == announcers {
				n++
			}
		}
		return float64(n)
	}
	allA := all(r.anacrolix)
	return benchfmt.Section{
		Name: fmt.Sprintf("Cold start: %d anacrolix servers, %v RTT", o.nodes, o.rtt),
		Rows: []benchfmt.Row{
			row("process start to its 1st query, median", queryOf, 50),
			row("cold lookup, 1st peer, median", firstOf, 50),
			row("cold lookup, 1st peer, p90", firstOf, 90),
			eighth,
			row("cold lookup, 8th peer, p90", eighthOf, 90),
			{Metric: "cold lookups that found all 8", Unit: "lookups", Ours: all(r.ours), Anacrolix: &allA, Better: "higher"},
		},
		Notes: []string{
			fmt.Sprintf("a fresh process per lookup, %d of each, alternating: ours `node peers --state-dir= --bootstrap <3 entry servers>`; anacrolix a dht.Server (passive, dhttest.Configure) running AnnounceTraversal at once with a bootstrap beside it", o.runs),
			fmt.Sprintf("times from exec to the first datagram a server read from the looker (query), and to the 1st and 8th distinct announced peer printed; a lookup needs 2 round trips at least, entry server then a holder, unless an entry server holds the peers; every server's send waits %v to a looker, %v to another server; -1: not reached", o.rtt, o.rtt/2),
			fmt.Sprintf("network formed and announced (%d info-hashes, 8 servers each; servers storing each one's peers: %v) in %v, without the delay; run r looks up info-hash r mod %d", len(r.holders), r.holders, r.setup.Round(time.Second), len(r.holders)),
		},
	}
}

func printTable(w io.Writer, r *results, o options) {
	fmt.Fprintf(w, "\nCold-start lookup, %d anacrolix servers, %v RTT, %d runs each (ms from exec)\n", o.nodes, o.rtt, o.runs)
	fmt.Fprintf(w, "  %-10s %8s %8s %8s %8s %8s %6s\n", "impl", "query", "1st p50", "1st p90", "8th p50", "8th p90", "all 8")
	for _, x := range []struct {
		name string
		ls   []lookup
	}{{"ours", r.ours}, {"anacrolix", r.anacrolix}} {
		n := 0
		for _, l := range x.ls {
			if l.peers == announcers {
				n++
			}
		}
		fmt.Fprintf(w, "  %-10s %8s %8s %8s %8s %8s %3d/%d\n", x.name, fmtMs(pct(x.ls, queryOf, 50)),
			fmtMs(pct(x.ls, firstOf, 50)), fmtMs(pct(x.ls, firstOf, 90)),
			fmtMs(pct(x.ls, eighthOf, 50)), fmtMs(pct(x.ls, eighthOf, 90)), n, len(x.ls))
	}
	state := "MISSED"
	if r.ratio() <= targetRatio {
		state = "met"
	}
	fmt.Fprintf(w, "  ours/anacrolix, 8th peer median: %.2fx (target <= %.1fx: %s)\n", r.ratio(), targetRatio, state)
}
