package main

// The generator child: a network of fake DHT nodes that answer ping,
// find_node and get_peers (so a server's table fills as far as such a
// network allows), and a load generator that keeps queries outstanding
// against the server under test. It takes one command a line on stdin and
// answers one JSON line on stdout.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"node/krpc"
	"node/routing"
)

// fakeNet is the fake nodes, each behind its own socket: a base set with
// random IDs (the first is every server's bootstrap) and a set crafted
// around the current server's ID, K for every prefix length it can share,
// so that every bucket it can have can fill.
type fakeNet struct {
	all     atomic.Pointer[[]routing.Contact] // base and crafted, for answers
	base    []routing.Contact
	trs     []*krpc.Transport
	crafted []routing.Contact
	ctrs    []*krpc.Transport
}

// craftedOffset is where crafted fakes' addresses start (127.100.8.1).
const craftedOffset = 2000

// fakeAddr is fake node i's address: 127.100.x.y, y in 1..250.
func fakeAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 100, byte(i / 250), byte(i%250 + 1)}), 6881)
}

func startFakes(count int) (*fakeNet, error) {
	r := rand.New(rand.NewPCG(2024, 5))
	f := &fakeNet{}
	for i := range count {
		f.base = append(f.base, routing.Contact{ID: routing.RandomID(r), Addr: fakeAddr(i)})
	}
	f.all.Store(&f.base)
	trs, err := f.listen(f.base)
	f.trs = trs
	return f, err
}

// craft replaces the crafted set with one around id.
func (f *fakeNet) craft(id routing.ID) error {
	for _, tr := range f.ctrs {
		tr.Close()
	}
	f.ctrs, f.crafted = nil, nil
	r := rand.New(rand.NewPCG(2025, 6))
	for i, cid := range bucketIDs(id, routing.K, r) {
		f.crafted = append(f.crafted, routing.Contact{ID: cid, Addr: fakeAddr(craftedOffset + i)})
	}
	all := append(slices.Clone(f.base), f.crafted...)
	f.all.Store(&all)
	trs, err := f.listen(f.crafted)
	f.ctrs = trs
	return err
}

// listen starts a transport for each of cs, answering as a fake node.
func (f *fakeNet) listen(cs []routing.Contact) ([]*krpc.Transport, error) {
	var trs []*krpc.Transport
	fail := func(err error) ([]*krpc.Transport, error) {
		for _, tr := range trs {
			tr.Close()
		}
		return nil, err
	}
	for _, self := range cs {
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(self.Addr))
		if err != nil {
			return fail(err)
		}
		tr, err := krpc.New(krpc.Config{Conn: pc, Timeout: 2 * time.Second, Handler: func(_ netip.AddrPort, q *krpc.Msg) *krpc.Msg {
			r := &krpc.Return{ID: self.ID}
			switch q.Q {
			case krpc.MethodFindNode, krpc.MethodGetPeers:
				target := q.A.Target
				if q.Q == krpc.MethodGetPeers {
					target = q.A.InfoHash
					r.Token = "fake"
				}
				if target != nil {
					r.Nodes = f.closest(*target, routing.K)
				}
			}
			return &krpc.Msg{R: r}
		}})
		if err != nil {
			pc.Close()
			return fail(err)
		}
		trs = append(trs, tr)
	}
	return trs, nil
}

func (f *fakeNet) close() {
	for _, tr := range append(f.trs, f.ctrs...) {
		tr.Close()
	}
}

// closest is the k fakes nearest target, by brute force: the fakes only
// answer while a table fills.
func (f *fakeNet) closest(target routing.ID, k int) []routing.Contact {
	out := make([]routing.Contact, 0, k+1)
	for _, c := range *f.all.Load() {
		i, _ := slices.BinarySearchFunc(out, c, func(a, b routing.Contact) int {
			return a.ID.Distance(target).Cmp(b.ID.Distance(target))
		})
		if i < k {
			out = slices.Insert(out, i, c)
			if len(out) > k {
				out = out[:k]
			}
		}
	}
	return out
}

// pingAll has every fake ping the server once, so that it learns of them
// as a busy node would: from their queries, verified by its pings back.
func (f *fakeNet) pingAll(server netip.AddrPort, pace time.Duration) (int, error) {
	// First learn the server's ID, to craft the fakes around it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	r, err := f.trs[0].Query(ctx, server, krpc.MethodPing, &krpc.Args{ID: f.base[0].ID})
	cancel()
	if err != nil {
		return 0, err
	}
	if err := f.craft(r.R.ID); err != nil {
		return 0, err
	}
	nodes := append(slices.Clone(f.base), f.crafted...)
	var ok atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, tr := range append(slices.Clone(f.trs), f.ctrs...) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := tr.Query(ctx, server, krpc.MethodPing, &krpc.Args{ID: nodes[i].ID}); err == nil {
				ok.Add(1)
			}
		}()
		time.Sleep(pace)
	}
	wg.Wait()
	return int(ok.Load()), nil
}

// loadSource is one load socket: 127.0.101.<i+1>.
func loadSource(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 101, byte(i + 1)}), 0)
}

// infoHashes are the get_peers targets; the first withPeers of them get
// stored peers.
func infoHashes(n int) []routing.ID {
	r := rand.New(rand.NewPCG(77, 1))
	out := make([]routing.ID, n)
	for i := range out {
		out[i] = routing.RandomID(r)
	}
	return out
}

// announce stores peersEach peers for each of ihs on the server: a
// get_peers for the token, then announce_peer, from peersEach distinct
// sources.
func announce(server netip.AddrPort, ihs []routing.ID, peersEach int) error {
	r := rand.New(rand.NewPCG(78, 1))
	for s := range peersEach {
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 102, byte(s + 1)}), 0)))
		if err != nil {
			return err
		}
		tr, err := krpc.New(krpc.Config{Conn: pc, Timeout: 2 * time.Second})
		if err != nil {
			pc.Close()
			return err
		}
		id := routing.RandomID(r)
		for _, ih := range ihs {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := tr.Query(ctx, server, krpc.MethodGetPeers, &krpc.Args{ID: id, InfoHash: &ih})
			if err == nil {
				port := 6881 + s
				_, err = tr.Query(ctx, server, krpc.MethodAnnouncePeer, &krpc.Args{ID: id, InfoHash: &ih, Token: resp.R.Token, Port: &port})
			}
			cancel()
			if err != nil {
				tr.Close()
				return fmt.Errorf("announce from source %d: %w", s, err)
			}
		}
		tr.Close()
	}
	return nil
}

// loadResult is what one load run reports.
type loadResult struct {
	Answered   int64   `json:"answered"`
	WithValues int64   `json:"with_values"`
	Lost       int64   `json:"lost"`
	Seconds    float64 `json:"seconds"`
	Bytes      int64   `json:"bytes"`
}

// runLoad keeps window queries outstanding against server from sources
// sockets, for d, and counts the answers.
func runLoad(server netip.AddrPort, method string, ihs []routing.ID, sources, window int, d time.Duration) (loadResult, error) {
	var res loadResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, sources)
	start := time.Now()
	deadline := start.Add(d)
	for s := range sources {
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(loadSource(s)))
		if err != nil {
			return res, err
		}
		_ = pc.SetReadBuffer(1 << 20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			r, err := loadOne(pc, server, method, ihs, s, window/sources, deadline)
			if err != nil {
				errs <- err
			}
			mu.Lock()
			res.Answered += r.Answered
			res.WithValues += r.WithValues
			res.Lost += r.Lost
			res.Bytes += r.Bytes
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	select {
	case err := <-errs:
		return res, err
	default:
	}
	return res, nil
}

// loadOne is one source's loop: pre-encoded queries that differ in their
// 4-byte transaction ID (and info-hash), matched to the answers.
func loadOne(pc *net.UDPConn, server netip.AddrPort, method string, ihs []routing.ID, src, window int, deadline time.Time) (loadResult, error) {
	var res loadResult
	r := rand.New(rand.NewPCG(uint64(src), 99))
	id := routing.RandomID(r)
	type tmpl struct {
		pkt  []byte
		tOff int
	}
	var tmpls []tmpl
	targets := ihs
	if method == krpc.MethodPing {
		targets = ihs[:1]
	}
	for _, ih := range targets {
		a := &krpc.Args{ID: id}
		if method == krpc.MethodGetPeers {
			a.InfoHash = &ih
		}
		pkt := (&krpc.Msg{T: "\x00\x00\x00\x00", Y: krpc.KindQuery, Q: method, A: a}).Append(nil)
		off := bytes.LastIndex(pkt, []byte("1:t4:"))
		tmpls = append(tmpls, tmpl{pkt, off + 5})
	}
	pending := make(map[uint32]struct{}, 2*window)
	var next uint32
	send := func() error {
		t := tmpls[int(next)%len(tmpls)]
		binary.BigEndian.PutUint32(t.pkt[t.tOff:], next)
		pending[next] = struct{}{}
		next++
		_, err := pc.WriteToUDPAddrPort(t.pkt, server)
		return err
	}
	for range window {
		if err := send(); err != nil {
			return res, err
		}
	}
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		_ = pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The window is presumed lost: count it and send it anew.
			res.Lost += int64(len(pending))
			clear(pending)
			for range window {
				if err := send(); err != nil {
					return res, err
				}
			}
			continue
		}
		if err != nil {
			return res, err
		}
		p := buf[:n]
		if !bytes.HasSuffix(p, []byte("1:y1:re")) {
			continue // the server pinging us, or an error
		}
		i := bytes.LastIndex(p, []byte("1:t4:"))
		if i < 0 || i+9 > n {
			continue
		}
		t := binary.BigEndian.Uint32(p[i+5:])
		if _, ok := pending[t]; !ok {
			continue
		}
		delete(pending, t)
		res.Answered++
		res.Bytes += int64(n)
		if bytes.Contains(p, []byte("6:valuesl")) {
			res.WithValues++
		}
		if err := send(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// runGen is the generator child's main: "fakes N" starts the fake
// network, then "ping ADDR", "announce ADDR IHS PEERS", "load ADDR METHOD
// IHS SOURCES WINDOW SECONDS" and "quit" run one step each.
func runGen() error {
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	var fakes *fakeNet
	defer func() {
		if fakes != nil {
			fakes.close()
		}
	}()
	reply := func(v any, err error) error {
		if err != nil {
			return out.Encode(map[string]string{"error": err.Error()})
		}
		return out.Encode(v)
	}
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		atoi := func(i int) int { n, _ := strconv.Atoi(f[i]); return n }
		var err error
		switch f[0] {
		case "fakes":
			fakes, err = startFakes(atoi(1))
			err = reply(map[string]int{"fakes": atoi(1)}, err)
		case "ping":
			n, perr := fakes.pingAll(netip.MustParseAddrPort(f[1]), 300*time.Microsecond)
			err = reply(map[string]int{"answered": n, "crafted": len(fakes.crafted)}, perr)
		case "announce":
			err = reply(map[string]bool{"ok": true}, announce(netip.MustParseAddrPort(f[1]), infoHashes(atoi(2))[:atoi(3)], atoi(4)))
		case "load":
			secs, _ := strconv.ParseFloat(f[6], 64)
			res, lerr := runLoad(netip.MustParseAddrPort(f[1]), f[2], infoHashes(atoi(3)), atoi(4), atoi(5), time.Duration(secs*float64(time.Second)))
			err = reply(res, lerr)
		case "quit":
			return nil
		default:
			err = reply(nil, fmt.Errorf("unknown command %q", f[0]))
		}
		if err != nil {
			return err
		}
	}
	return in.Err()
}
