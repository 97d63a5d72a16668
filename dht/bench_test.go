package dht

// Benchmarks comparing our node with anacrolix/dht/v2 on loopback.
//
//	go test -run '^$' -bench 'Lookup|Serve' -benchtime 20x ./dht
//
// Every benchmark uses b.Loop, so its (expensive) network setup runs once
// per -count, not once per b.N probe.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/krpc"
	"node/routing"
)

const (
	benchSubnetsPerNet = 3  // subnets per lookup network
	benchHostsPerNet   = 80 // nodes per subnet: 240 per implementation
	benchInfoHashes    = 4  // info-hashes announced before a lookup benchmark
	benchAnnouncers    = 8  // distinct peers announced per info-hash
	benchLookupTimeout = 15 * time.Second
	benchSetupTimeout  = 120 * time.Second
	benchServeWindow   = 64 // queries outstanding in the serve load generator
	benchServePeers    = 4  // peers stored for the served info-hash
)

// benchLookupers are the indices of the nodes that run the timed lookups;
// they never announce.
var benchLookupers = []int{10, 95, 130, 175, 230}

// benchAnnouncer is the node index of announcer j (0..benchAnnouncers-1) of
// info-hash h: 8 distinct nodes per info-hash, spread over the subnets, and
// never one of benchLookupers.
func benchAnnouncer(h, j int) int {
	return 20 + (h*benchAnnouncers+j)*6
}

func benchInfoHashList() []routing.ID {
	r := rand.New(rand.NewPCG(42, 43))
	out := make([]routing.ID, benchInfoHashes)
	for i := range out {
		out[i] = routing.RandomID(r)
	}
	return out
}

// lookupTally accumulates per-lookup figures and reports their means.
type lookupTally struct {
	n, withPeer         int
	queries, responses  int
	peers               int
	firstPeer, duration time.Duration
}

func (t *lookupTally) add(queries, responses, peers int, first, end time.Duration) {
	t.n++
	t.queries += queries
	t.responses += responses
	t.peers += peers
	t.duration += end
	if peers > 0 {
		t.withPeer++
		t.firstPeer += first
	}
}

func (t *lookupTally) report(b *testing.B) {
	if t.n == 0 {
		return
	}
	n := float64(t.n)
	b.ReportMetric(float64(t.queries)/n, "queries/op")
	b.ReportMetric(float64(t.responses)/n, "responses/op")
	b.ReportMetric(float64(t.peers)/n, "peers/op")
	b.ReportMetric(t.duration.Seconds()*1e3/n, "end-ms/op")
	if t.withPeer > 0 {
		// Mean over the lookups that found at least one peer.
		b.ReportMetric(t.firstPeer.Seconds()*1e3/float64(t.withPeer), "first-peer-ms/op")
	}
	b.ReportMetric(float64(t.n-t.withPeer), "peerless-lookups")
}

func BenchmarkLookup(b *testing.B) {
	b.Run("ours", benchLookupOurs)
	b.Run("anacrolix", benchLookupAnacrolix)
}

func benchLookupOurs(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), benchSetupTimeout)
	defer cancel()
	setupStart := time.Now()

	first := startOurs(b, 40, benchHostsPerNet, nil, nil)
	boot := []string{first[0].Addr().String(), first[1].Addr().String(), first[2].Addr().String()}
	nodes := first
	for s := 1; s < benchSubnetsPerNet; s++ {
		nodes = append(nodes, startOurs(b, 40+s, benchHostsPerNet, boot, nil)...)
	}
	bootstrapAll(b, ctx, nodes)

	ihs := benchInfoHashList()
	want := make([]map[netip.AddrPort]bool, len(ihs))
	for h, ih := range ihs {
		want[h] = map[netip.AddrPort]bool{}
		for j := 0; j < benchAnnouncers; j++ {
			n := nodes[benchAnnouncer(h, j)]
			port := 7000 + j
			if _, err := n.Announce(ctx, ih, port, nil); err != nil {
				b.Fatalf("announce %d/%d from %v: %v", h, j, n.Addr(), err)
			}
			want[h][netip.AddrPortFrom(n.Addr().Addr(), uint16(port))] = true
		}
	}
	b.Logf("ours: %d nodes ready in %v", len(nodes), time.Since(setupStart).Round(time.Millisecond))

	var tally lookupTally
	i := 0
	for b.Loop() {
		h := i % len(ihs)
		n := nodes[benchLookupers[i%len(benchLookupers)]]
		i++

		ch := make(chan netip.AddrPort, 256) // never fills: at most 8 peers exist
		done := make(chan struct{})
		var (
			got   int
			first time.Duration
		)
		start := time.Now()
		go func() {
			defer close(done)
			seen := map[netip.AddrPort]bool{}
			for p := range ch {
				if want[h][p] && !seen[p] {
					seen[p] = true
					if got++; got == 1 {
						first = time.Since(start)
					}
				}
			}
		}()
		lctx, lcancel := context.WithTimeout(context.Background(), benchLookupTimeout)
		st, err := n.GetPeers(lctx, ihs[h], ch)
		end := time.Since(start)
		lcancel()
		close(ch)
		<-done
		if err != nil {
			b.Fatalf("lookup from %v: %v (%+v)", n.Addr(), err, st)
		}
		tally.add(st.Queries, st.Responses, got, first, end)
	}
	tally.report(b)
}

func benchLookupAnacrolix(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), benchSetupTimeout)
	defer cancel()
	setupStart := time.Now()

	noBoot := func() []netip.AddrPort { return nil }
	first := startAnacrolixNetwork(b, 50, benchHostsPerNet, noBoot)
	boot := func() []netip.AddrPort {
		return []netip.AddrPort{anacrolixAddr(first[0]), anacrolixAddr(first[1]), anacrolixAddr(first[2])}
	}
	servers := first
	for s := 1; s < benchSubnetsPerNet; s++ {
		servers = append(servers, startAnacrolixNetwork(b, 50+s, benchHostsPerNet, boot)...)
	}
	// Two rounds, as bootstrapAll does for ours: the second lets the early
	// servers learn of the later ones.
	for round := 0; round < 2; round++ {
		for _, s := range servers {
			if _, err := s.BootstrapContext(ctx); err != nil && round == 0 {
				b.Fatalf("anacrolix bootstrap %v: %v", s.Addr(), err)
			}
		}
	}

	ihs := benchInfoHashList()
	want := make([]map[netip.AddrPort]bool, len(ihs))
	for h, ih := range ihs {
		want[h] = map[netip.AddrPort]bool{}
		for j := 0; j < benchAnnouncers; j++ {
			s := servers[benchAnnouncer(h, j)]
			port := 7000 + j
			a, err := s.AnnounceTraversal(ih, adht.AnnouncePeer(adht.AnnouncePeerOpts{Port: port}))
			if err != nil {
				b.Fatalf("anacrolix announce: %v", err)
			}
			stop := time.AfterFunc(benchLookupTimeout, a.Close)
			for range a.Peers {
			}
			select {
			case <-a.Finished():
			case <-ctx.Done():
				b.Fatalf("anacrolix announce: %v", ctx.Err())
			}
			stop.Stop()
			a.Close()
			want[h][netip.AddrPortFrom(anacrolixAddr(s).Addr(), uint16(port))] = true
		}
	}
	// anacrolix stores announced peers on a goroutine of its own.
	time.Sleep(100 * time.Millisecond)
	b.Logf("anacrolix: %d servers ready in %v", len(servers), time.Since(setupStart).Round(time.Millisecond))

	var tally lookupTally
	i := 0
	for b.Loop() {
		h := i % len(ihs)
		s := servers[benchLookupers[i%len(benchLookupers)]]
		i++

		var (
			got   int
			first time.Duration
		)
		seen := map[netip.AddrPort]bool{}
		start := time.Now()
		a, err := s.AnnounceTraversal(ihs[h])
		if err != nil {
			b.Fatalf("anacrolix lookup: %v", err)
		}
		stop := time.AfterFunc(benchLookupTimeout, a.Close)
		for pv := range a.Peers {
			for _, p := range pv.Peers {
				ip, _ := netip.AddrFromSlice(p.IP)
				ap := netip.AddrPortFrom(ip.Unmap(), uint16(p.Port))
				if want[h][ap] && !seen[ap] {
					seen[ap] = true
					if got++; got == 1 {
						first = time.Since(start)
					}
				}
			}
		}
		end := time.Since(start)
		if !stop.Stop() { // the timer fired: a.Close ended the lookup
			b.Fatalf("anacrolix lookup from %v timed out", s.Addr())
		}
		ts := a.TraversalStats() // the traversal has stopped: a.Peers is closed
		a.Close()
		tally.add(int(ts.NumAddrsTried), int(ts.NumResponses), got, first, end)
	}
	tally.report(b)
}

// Serving benchmarks: a load generator on a plain UDP socket keeps a window
// of benchServeWindow queries outstanding against one node, each with its
// own transaction ID; one b.Loop iteration is one answered query.

func BenchmarkServeGetPeers(b *testing.B) {
	b.Run("ours", func(b *testing.B) { benchServe(b, "ours", krpc.MethodGetPeers) })
	b.Run("anacrolix", func(b *testing.B) { benchServe(b, "anacrolix", krpc.MethodGetPeers) })
}

func BenchmarkServePing(b *testing.B) {
	b.Run("ours", func(b *testing.B) { benchServe(b, "ours", krpc.MethodPing) })
	b.Run("anacrolix", func(b *testing.B) { benchServe(b, "anacrolix", krpc.MethodPing) })
}

// benchServeTarget starts one node of impl on 127.0.45.1 (ours) or
// 127.0.55.1 (anacrolix) and returns its address and the subnet to put
// clients on.
func benchServeTarget(b *testing.B, impl string) (netip.AddrPort, int) {
	switch impl {
	case "ours":
		return startOurs(b, 45, 1, nil, nil)[0].Addr(), 45
	case "anacrolix":
		s := startAnacrolix(b, 55, 1, func() []netip.AddrPort { return nil })
		return anacrolixAddr(s), 55
	}
	b.Fatalf("unknown implementation %q", impl)
	return netip.AddrPort{}, 0
}

func benchServe(b *testing.B, impl, method string) {
	target, subnet := benchServeTarget(b, impl)
	ih := routing.RandomID(rand.New(rand.NewPCG(7, 8)))
	if method == krpc.MethodGetPeers {
		benchSeedPeers(b, target, subnet, ih)
	}

	g := newBenchLoadGen(b, target, subnet, method, ih)
	var ru0, ru1 syscall.Rusage
	n := 0
	for b.Loop() {
		if n == 0 {
			// Here rather than before the loop, which resets the timer:
			// the window's first queries are timed and counted too. With
			// -benchtime 20x (fewer iterations than the window) the figures
			// are therefore dominated by start-up; use -benchtime 2s or
			// more to measure throughput.
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru0); err != nil {
				b.Fatal(err)
			}
			for range benchServeWindow {
				g.send(b)
			}
		}
		g.await(b)
		g.send(b)
		n++
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru1); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "queries/s")
	// CPU of the whole process: the node under test, the load generator
	// (same for both implementations) and anything else running in it.
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) - syscall.TimevalToNsec(ru0.Utime) +
		syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Stime))
	b.ReportMetric(cpu.Seconds()*1e6/float64(n), "cpu-us/query")
	b.ReportMetric(float64(g.lost), "lost-queries")
	b.ReportMetric(float64(g.bytes)/float64(n), "answer-bytes")
}

// benchRoundTrip sends q from pc to target and returns the answer that
// echoes q's transaction ID, retrying a few times.
func benchRoundTrip(pc *net.UDPConn, target netip.AddrPort, q *krpc.Msg) (*krpc.Msg, error) {
	pkt := q.Append(nil)
	buf := make([]byte, 4096)
	for try := 0; try < 3; try++ {
		if _, err := pc.WriteToUDPAddrPort(pkt, target); err != nil {
			return nil, err
		}
		_ = pc.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := pc.ReadFromUDPAddrPort(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return nil, err
			}
			m, err := krpc.Parse(buf[:n])
			if err != nil || m.T != q.T || m.Y == krpc.KindQuery {
				continue
			}
			if m.E != nil {
				return nil, m.E
			}
			return &m, nil
		}
	}
	return nil, fmt.Errorf("%s to %v: no answer", q.Q, target)
}

// benchSeedPeers announces benchServePeers peers for ih to target, from
// sockets on distinct loopback addresses, and waits until a get_peers
// answer lists them all.
func benchSeedPeers(b *testing.B, target netip.AddrPort, subnet int, ih routing.ID) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < benchServePeers; i++ {
		pc := listenLoopback(b, subnet, 10+i).(*net.UDPConn)
		args := &krpc.Args{ID: routing.RandomID(r), InfoHash: &ih}
		resp, err := benchRoundTrip(pc, target, &krpc.Msg{T: "gp", Y: krpc.KindQuery, Q: krpc.MethodGetPeers, A: args})
		if err != nil {
			pc.Close()
			b.Fatalf("seeding get_peers: %v", err)
		}
		port := 6881
		ann := &krpc.Args{ID: args.ID, InfoHash: &ih, Token: resp.R.Token, Port: &port}
		_, err = benchRoundTrip(pc, target, &krpc.Msg{T: "ap", Y: krpc.KindQuery, Q: krpc.MethodAnnouncePeer, A: ann})
		pc.Close()
		if err != nil {
			b.Fatalf("seeding announce_peer: %v", err)
		}
	}
	pc := listenLoopback(b, subnet, 9).(*net.UDPConn)
	defer pc.Close()
	id := routing.RandomID(r)
	var got int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := benchRoundTrip(pc, target, &krpc.Msg{T: "ck", Y: krpc.KindQuery, Q: krpc.MethodGetPeers, A: &krpc.Args{ID: id, InfoHash: &ih}})
		if err != nil {
			b.Fatalf("checking seeded peers: %v", err)
		}
		if got = len(resp.R.Values); got == benchServePeers {
			return
		}
	}
	b.Fatalf("seeded %d peers, a get_peers answer lists %d", benchServePeers, got)
}

// benchLoadGen sends pre-encoded queries that differ only in their 4-byte
// transaction ID, and matches answers to them.
type benchLoadGen struct {
	pc      *net.UDPConn
	target  netip.AddrPort
	pkt     []byte // the query; bytes tOff..tOff+4 are the transaction ID
	tOff    int
	next    uint32
	pending map[uint32]struct{}
	buf     []byte
	reads   int
	lost    int
	bytes   int // of the answers matched
}

func newBenchLoadGen(b *testing.B, target netip.AddrPort, subnet int, method string, ih routing.ID) *benchLoadGen {
	pc := listenLoopback(b, subnet, 2).(*net.UDPConn)
	b.Cleanup(func() { pc.Close() })
	_ = pc.SetReadBuffer(1 << 20)
	_ = pc.SetWriteBuffer(1 << 20)
	args := &krpc.Args{ID: routing.RandomID(rand.New(rand.NewPCG(11, 12)))}
	if method == krpc.MethodGetPeers {
		args.InfoHash = &ih
	}
	pkt := (&krpc.Msg{T: "\x00\x00\x00\x00", Y: krpc.KindQuery, Q: method, A: args}).Append(nil)
	// "t" is the last key but "y" (keys are sorted: a, q, t, y), so its
	// last occurrence is the real one whatever the ID bytes hold.
	off := bytes.LastIndex(pkt, []byte("1:t4:"))
	if off < 0 {
		b.Fatalf("no transaction ID in %q", pkt)
	}
	return &benchLoadGen{
		pc: pc, target: target, pkt: pkt, tOff: off + 5,
		pending: make(map[uint32]struct{}, 2*benchServeWindow),
		buf:     make([]byte, 4096),
	}
}

func (g *benchLoadGen) send(b *testing.B) {
	binary.BigEndian.PutUint32(g.pkt[g.tOff:], g.next)
	g.pending[g.next] = struct{}{}
	g.next++
	if _, err := g.pc.WriteToUDPAddrPort(g.pkt, g.target); err != nil {
		b.Fatalf("load generator send: %v", err)
	}
}

// await reads until one outstanding query is answered. When nothing
// arrives for a second the window is presumed lost, counted, and sent anew.
func (g *benchLoadGen) await(b *testing.B) {
	stalls := 0
	for {
		if g.reads%benchServeWindow == 0 {
			_ = g.pc.SetReadDeadline(time.Now().Add(time.Second))
		}
		g.reads++
		n, _, err := g.pc.ReadFromUDPAddrPort(g.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if stalls++; stalls == 5 {
				b.Fatalf("load generator: no answer for %d s", stalls)
			}
			g.lost += len(g.pending)
			clear(g.pending)
			for range benchServeWindow {
				g.send(b)
			}
			g.reads = 0
			continue
		}
		if err != nil {
			b.Fatalf("load generator read: %v", err)
		}
		// A response ends with its "y" (the last key): anything else, such
		// as the node pinging us, is ignored. Its "t" is the last "1:t4:".
		p := g.buf[:n]
		if !bytes.HasSuffix(p, []byte("1:y1:re")) {
			continue
		}
		i := bytes.LastIndex(p, []byte("1:t4:"))
		if i < 0 || i+9 > n {
			continue
		}
		t := binary.BigEndian.Uint32(p[i+5:])
		if _, ok := g.pending[t]; !ok {
			continue
		}
		delete(g.pending, t)
		g.bytes += n
		return
	}
}
