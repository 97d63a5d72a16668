package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"node/internal/adversary"
	"node/internal/bench/benchkit"
	"node/krpc"
	"node/routing"
)

// runResult is one fetch process, measured from outside.
type runResult struct {
	Kind      string  `json:"kind"` // "clean" or "hostile"
	Run       int     `json:"run"`
	Limit     float64 `json:"limit_s"`
	Metadata  float64 `json:"metadata_s"` // process start → "metadata" event; -1: never
	Complete  float64 `json:"complete_s"` // process start → "complete" event; -1: never
	Exited    float64 `json:"exited_s"`
	CPU       float64 `json:"cpu_s"`       // user + sys
	MaxRSSMiB float64 `json:"max_rss_mib"` // ru_maxrss
	Verified  bool    `json:"verified"`
	Error     string  `json:"error,omitempty"`
	// From the "complete" event.
	Peers      int     `json:"peers"`
	HashFails  int     `json:"hash_fails"`
	WastedMiB  float64 `json:"wasted_mib"`
	Downloaded float64 `json:"downloaded_mib"`
	// From the log on stderr.
	Bans []peerEvent `json:"bans"`
	// Drops is connections dropped, "kind: reason" → count; DropLines
	// the log lines, which can be more: our fetcher logs a drop for each
	// batch of messages that was already queued from the peer.
	Drops     map[string]int `json:"drops"`
	DropLines int            `json:"drop_lines"`
	Logs      map[string]int `json:"log_counts"`
	Attack    *attackStats   `json:"attack,omitempty"`
	Events    []map[string]any
}

// peerEvent is a ban: whom, what the peer was, why.
type peerEvent struct {
	Peer   string `json:"peer"`
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// attackStats is what happened beside a run: our pings of the fetcher's
// DHT node (every run) and what the adversaries did (hostile runs).
type attackStats struct {
	BoundAfter    float64 `json:"fetcher_bound_s"` // its sockets open, from the run's start; -1: never seen
	PingsSent     int     `json:"pings_sent"`
	PingsAnswered int     `json:"pings_answered"`
	Hostile       bool    `json:"hostile"`
	FloodFetcher  int     `json:"flood_packets_to_fetcher"`
	FloodHonest   int     `json:"flood_packets_to_dht"`
	SquatHeld     int     `json:"squatter_handshakes"`
	JunkGetPeers  int     `json:"junk_node_get_peers"`
	// Accepted is how many connections each behaviour accepted.
	Accepted map[string]int `json:"accepted_by_kind"`
}

type results struct {
	runs   []runResult
	failed []string
	notes  []string
	pairs  int
}

// runPairs runs clean then hostile, o.runs times or as many as the
// deadline leaves time for, and stops after a hostile run that failed
// (another would only fail again, at its time limit).
func runPairs(ctx context.Context, o options, sw *swarm, launcher string) results {
	var res results
	deadline, _ := ctx.Deadline()
	var lastPair time.Duration
	for run := 1; run <= o.runs; run++ {
		left := time.Until(deadline) - reserve
		if run > 1 && left < lastPair*5/4 {
			res.notes = append(res.notes, fmt.Sprintf("%d of %d pairs of runs: the time left (%.0f s) would not fit another (the last took %.0f s)",
				run-1, o.runs, left.Seconds(), lastPair.Seconds()))
			break
		}
		began := time.Now()
		ok := true
		for _, kind := range []string{"clean", "hostile"} {
			limit := min(cleanLimit, left)
			if kind == "hostile" {
				limit = min(hostileLimit, time.Until(deadline)-reserve)
			}
			if limit < 15*time.Second || ctx.Err() != nil {
				why := "out of time"
				if ctx.Err() != nil {
					why = context.Cause(ctx).Error()
				}
				res.notes = append(res.notes, fmt.Sprintf("the %s run of pair %d was not started: %s", kind, run, why))
				ok = false
				break
			}
			r := fetchRun(ctx, o, sw, launcher, kind, run, limit)
			res.runs = append(res.runs, r)
			if r.Error != "" {
				res.failed = append(res.failed, fmt.Sprintf("%s run %d: %s", kind, run, r.Error))
				ok = false
				break
			}
		}
		if !ok {
			break
		}
		res.pairs = run
		lastPair = time.Since(began)
	}
	return res
}

// fetchRun runs node fetch of kind's magnet link once, with the attack
// beside it for a hostile run, and checks what it wrote.
func fetchRun(ctx context.Context, o options, sw *swarm, launcher, kind string, run int, limit time.Duration) runResult {
	c, listen := sw.clean, sw.cleanListen
	if kind == "hostile" {
		c, listen = sw.hostile, sw.hostileListen
	}
	tmp := filepath.Dir(sw.src)
	dst := filepath.Join(tmp, fmt.Sprintf("%s-run%d", kind, run))
	r := runResult{Kind: kind, Run: run, Limit: limit.Seconds(), Metadata: -1, Complete: -1}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		r.Error = err.Error()
		return r
	}
	if !o.keep {
		defer os.RemoveAll(dst)
	}
	logf("== %s run %d (limit %v)", kind, run, limit.Round(time.Second))
	args := []string{"fetch", "--no-port-mapping", "--state-dir=", "--no-utp", "--encryption", "off", "--json", "--no-seed", "--log-json", "--log-level", o.logLevel,
		"--listen", listen.String(), "--bootstrap", sw.boot[(run-1)%len(sw.boot)],
		"--dir", dst, "--timeout", (limit - 5*time.Second).String(), c.magnet}
	attack := func(actx context.Context, start time.Time) *attackStats {
		return sw.adv.attack(actx, start, kind == "hostile", listen, [20]byte(c.mi.Info.InfoHash), sw, limit)
	}
	logTo := ""
	if o.logDir != "" {
		logTo = filepath.Join(o.logDir, fmt.Sprintf("%s-run%d.log", kind, run))
	}
	measure(ctx, &r, limit, launcher, o.nodeBin, args, sw.kindOf, attack, logTo)
	if r.Error == "" {
		if err := benchkit.Verify(dst, c.files); err != nil {
			r.Error = "download differs from the source: " + err.Error()
		} else {
			r.Verified = true
		}
	}
	state := "[verified]"
	if r.Error != "" {
		state = "FAILED: " + r.Error
	}
	logf("%-7s run %d: metadata %.2fs  complete %.2fs  exit %.2fs  cpu %.2fs  rss %.1f MiB  peers %d  hash fails %d  bans %d  drops %d  %s",
		kind, run, r.Metadata, r.Complete, r.Exited, r.CPU, r.MaxRSSMiB, r.Peers, r.HashFails, len(r.Bans), sum(r.Drops), state)
	return r
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// kindOf names what the peer at ip is: a seeder, an adversary's
// behaviour, a junk value or (for anything else) "other".
func (s *swarm) kindOf(ip netip.Addr) string {
	for _, sd := range s.seeders {
		if sd.Addr.Addr() == ip {
			return "seeder"
		}
	}
	if s.adv != nil {
		if k, ok := s.adv.kindOf[ip]; ok {
			return k
		}
	}
	if netip.MustParsePrefix("127.0.99.0/24").Contains(ip) {
		return "junk-value"
	}
	return "other"
}

// digits are masked in reasons, so that reasons group.
var digits = regexp.MustCompile(`[0-9]+`)

func reasonKey(s string) string {
	s = digits.ReplaceAllString(s, "N")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// peerIP parses the "peer" (ip:port) or "ip" field of a log line.
func peerIP(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr()
	}
	a, _ := netip.ParseAddr(s)
	return a
}

// measure runs node fetch through the launcher, at most limit long (then
// the launcher kills it by its PID; the launcher itself is killed a little
// later if it hangs), reading its JSON events on stdout and its JSON log
// on stderr. attack runs from the start until the process ends.
func measure(parent context.Context, r *runResult, limit time.Duration, launcher, nodeBin string, args []string,
	kindOf func(netip.Addr) string, attack func(context.Context, time.Time) *attackStats, logTo string) {
	cmd, ctx, cancel := benchkit.Launch(parent, launcher, limit, nodeBin, args...)
	defer cancel()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.Error = err.Error()
		return
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		r.Error = err.Error()
		return
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.Error = err.Error()
		return
	}
	actx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	attacked := make(chan *attackStats, 1)
	// The reader below moves start to the launcher's own start line; the
	// attack keeps the first reading rather than race with it.
	go func(start time.Time) { attacked <- attack(actx, start) }(start)

	// The log: bans and drops by reason, other messages counted.
	r.Drops, r.Logs = map[string]int{}, map[string]int{}
	dropped := map[[2]string]bool{} // {peer, reason}
	var other benchkit.Tail
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var lf *os.File
		if logTo != "" {
			if f, err := os.Create(logTo); err == nil {
				lf = f
				defer lf.Close()
			}
		}
		for sc.Scan() {
			if lf != nil {
				fmt.Fprintf(lf, "%s\n", sc.Bytes())
			}
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				fmt.Fprintf(&other, "%s\n", sc.Bytes())
				continue
			}
			msg, _ := l["msg"].(string)
			r.Logs[msg]++
			switch msg {
			case "banning peer":
				ip, _ := l["ip"].(string)
				why, _ := l["reason"].(string)
				r.Bans = append(r.Bans, peerEvent{Peer: ip, Kind: kindOf(peerIP(ip)), Reason: why})
			case "dropping peer":
				p, _ := l["peer"].(string)
				why, _ := l["error"].(string)
				r.DropLines++
				key := kindOf(peerIP(p)) + ": " + reasonKey(why)
				if !dropped[[2]string{p, key}] {
					dropped[[2]string{p, key}] = true
					r.Drops[key]++
				}
			}
		}
	}()

	got := benchkit.ReadEvents(stdout, &start, func(ev map[string]any) {
		num := func(k string) float64 { f, _ := ev[k].(float64); return f }
		switch ev["event"] {
		case "progress":
			return
		case "complete":
			r.Peers, r.HashFails = int(num("peers")), int(num("hash_fails"))
			r.WastedMiB, r.Downloaded = num("wasted")/(1<<20), num("downloaded")/(1<<20)
		}
		r.Events = append(r.Events, ev)
	})
	metaAt, doneAt, usage := got.Metadata, got.Complete, got.Usage
	<-logDone
	werr := cmd.Wait()
	r.Exited = time.Since(start).Seconds()
	stopAttack()
	r.Attack = <-attacked
	if usage != nil {
		r.CPU = usage.UserCPU() + usage.SysCPU()
		r.MaxRSSMiB = usage.MaxRSSMiB()
	}
	if metaAt > 0 {
		r.Metadata = metaAt.Seconds()
	}
	if doneAt > 0 {
		r.Complete = doneAt.Seconds()
	}
	last := strings.TrimSpace(other.String())
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	switch {
	case parent.Err() != nil:
		r.Error = fmt.Sprintf("interrupted (%v) after %.1f s", context.Cause(parent), r.Exited)
	case ctx.Err() != nil || usage != nil && usage.Killed:
		r.Error = fmt.Sprintf("killed at its limit of %v (metadata at %v, complete at %v)", limit, metaAt.Round(time.Millisecond), doneAt.Round(time.Millisecond))
	case werr != nil:
		r.Error = fmt.Sprintf("launcher: %v; %s", werr, last)
	case usage == nil:
		r.Error = "the launcher reported no rusage; " + last
	case usage.Exit != 0:
		r.Error = fmt.Sprintf("exit %d %s: %s", usage.Exit, usage.Signaled, last)
	case metaAt == 0 || doneAt == 0:
		r.Error = "exited without metadata and complete events; " + last
	}
}

// attack runs beside a fetch listening on fetcher (TCP for peers, UDP
// for its DHT node) until ctx ends. Once the fetcher's sockets are open
// the prober pings its DHT node 10 times a second (under the per-IP rate
// limit), counting answers: how well it still serves the DHT. In a
// hostile run, the junk node pings it too (so that its lookups know the
// junk node), the dialling squatter connects and the flooders send.
func (a *adversaries) attack(ctx context.Context, start time.Time, hostile bool, fetcher netip.AddrPort, ih [20]byte, sw *swarm, limit time.Duration) *attackStats {
	st := &attackStats{BoundAfter: -1, Hostile: hostile}
	before := a.accepted()
	junkBefore := a.junkAsked.get()
	defer func() {
		if !hostile {
			return
		}
		st.JunkGetPeers = a.junkAsked.get() - junkBefore
		st.Accepted = a.accepted()
		for k, v := range before {
			st.Accepted[k] -= v
		}
	}()
	if !waitBound(ctx, fetcher) {
		return st
	}
	st.BoundAfter = time.Since(start).Seconds()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Go(func() {
		sent, answered := pings(ctx, a.prober, fetcher)
		mu.Lock()
		st.PingsSent, st.PingsAnswered = sent, answered
		mu.Unlock()
	})
	if hostile {
		junkID := routing.ID(ih)
		junkID[19] ^= 1
		_ = a.junk.Query(fetcher, "jf", krpc.MethodPing, &krpc.Args{ID: junkID})
		var honest []netip.AddrPort
		for _, n := range sw.nodes {
			honest = append(honest, n.Addr())
		}
		wg.Go(func() {
			held := adversary.SquatSlots(ctx, netip.MustParseAddr(squatDialerIP), fetcher, ih, squatConns, 10*time.Second)
			mu.Lock()
			st.SquatHeld = held
			mu.Unlock()
		})
		for i, n := range a.flooders {
			every := floodEvery
			if i%heavyEvery == 0 {
				every /= heavyFactor
			}
			targets, sent := []netip.AddrPort{fetcher}, &st.FloodFetcher
			if i >= floodersPerSide {
				targets, sent = honest, &st.FloodHonest
			}
			wg.Go(func() {
				k := adversary.Flood(ctx, n, targets, every, int(limit/every)+1, ih, adversary.DefaultFloodMix)
				mu.Lock()
				*sent += k
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	return st
}

// waitBound polls /proc/net/udp until a socket is bound to addr (node
// fetch binds its TCP listener first, so both are open then), or ctx
// ends. It does not touch the fetcher: a ping would go unanswered when
// its DHT node cannot send, and a TCP connection would count as a peer.
func waitBound(ctx context.Context, addr netip.AddrPort) bool {
	a4 := addr.Addr().As4()
	// The kernel prints the address as a host-order (little-endian here)
	// 32-bit number, and the port in hex.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", a4[3], a4[2], a4[1], a4[0], addr.Port())
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile("/proc/net/udp"); err != nil || strings.Contains(string(b), " "+want+" ") {
			return err == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// pings pings addr from n 10 times a second until ctx ends, and counts
// the answers to these pings (a reply from an earlier run's fetcher on
// the same address does not count).
func pings(ctx context.Context, n *adversary.Node, addr netip.AddrPort) (sent, answered int) {
	var id routing.ID
	copy(id[:], "soakbench-prober")
	nonce := fmt.Sprintf("%04x", rand.IntN(1<<16))
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			m, from, err := n.Recv(100 * time.Millisecond)
			if err == nil && from == addr && m.Y == krpc.KindResponse && strings.HasPrefix(m.T, nonce) {
				got.Add(1)
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		if n.Query(addr, nonce+strconv.Itoa(sent), krpc.MethodPing, &krpc.Args{ID: id}) == nil {
			sent++
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	<-done
	return sent, int(got.Load())
}
