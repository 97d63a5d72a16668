package dht

// BenchmarkLookup1000: get_peers lookups in a loopback network of 1,000
// nodes of one implementation, ours against anacrolix/dht/v2, with and
// without a simulated 50 ms round trip.
//
//	go test -run '^$' -bench 'Lookup1000' -benchtime 9x -timeout 20m ./dht
//
// Setup (untimed, before b.Loop): lookup1000Nodes sockets on distinct
// addresses 127.<net>.<0..3>.<1..250>, one network per sub-benchmark; every
// node bootstraps through the first three (three rounds, the first three
// nodes sequentially, the rest from a pool of lookup1000Workers goroutines,
// the whole bounded by lookup1000SetupTimeout; after each round every
// anacrolix server pings its table, which its TableMaintainer would do, so
// that it hands out the nodes that joined after its own lookups); then 8
// distinct nodes announce each of lookup1000InfoHashes info-hashes, each on
// its own port.
//
// The -rtt50ms variants wrap every socket in a delayConn, which sends each
// datagram 25 ms after WriteTo returns, so a query's round trip takes
// about 50 ms. The delay is switched on only after bootstrap and the
// announces: with it on from the start, setting up 1,000 nodes takes far
// longer than the 3 minutes allowed, and the routing tables the lookups
// start from would be the same anyway.
//
// Each b.Loop iteration is one get_peers lookup for the next info-hash,
// from the next of lookup1000Lookers (nodes that never announced). The
// figures reported are medians over the iterations: queries/op (ours:
// queries sent; anacrolix: distinct addresses tried), first-peer-ms and
// eighth-peer-ms (time until the first and the eighth announced peer
// arrived; a lookup that never got there counts as infinitely slow, and an
// infinite median is reported as -1), end-ms (until the lookup returned)
// and peers/op (announced peers found, of 8). all8-lookups counts the
// lookups that found all 8 and nodes is the network size.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/dht/dhttest"
	"node/routing"
)

const (
	lookup1000Default      = 1000 // nodes per network; env NODE_BENCH_LOOKUP1000_NODES overrides
	lookup1000HostsPerNet  = 250  // hosts per 127.x.y.0/24
	lookup1000InfoHashes   = 9
	lookup1000Workers      = 32 // concurrent bootstraps
	lookup1000AnnWorkers   = 8  // concurrent announces
	lookup1000SetupTimeout = 3 * time.Minute
	lookup1000Timeout      = 15 * time.Second // per lookup or announce
	lookup1000OneWay       = 25 * time.Millisecond
)

// lookup1000Announcer is the node index of announcer j (0..7) of info-hash
// h: 72 distinct nodes spread over the network, none of the first ten.
func lookup1000Announcer(count, h, j int) int {
	return 10 + (h*benchAnnouncers+j)*((count-10)/(lookup1000InfoHashes*benchAnnouncers))
}

// lookup1000Lookers returns the 12 node indices that run the timed
// lookups, in rotation: spread over the network, none of them a bootstrap
// node or an announcer.
func lookup1000Lookers(count int) []int {
	ann := map[int]bool{}
	for h := range lookup1000InfoHashes {
		for j := range benchAnnouncers {
			ann[lookup1000Announcer(count, h, j)] = true
		}
	}
	var out []int
	for k := range 12 {
		i := 5 + k*(count-5)/12
		for ann[i] {
			i++
		}
		out = append(out, i)
	}
	return out
}

func lookup1000Nodes(b *testing.B) int {
	if s := os.Getenv("NODE_BENCH_LOOKUP1000_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 200 || n > 4*lookup1000HostsPerNet {
			b.Fatalf("NODE_BENCH_LOOKUP1000_NODES=%q: want 200..%d", s, 4*lookup1000HostsPerNet)
		}
		return n
	}
	return lookup1000Default
}

func lookup1000InfoHashList() []routing.ID {
	r := rand.New(rand.NewPCG(1000, 1001))
	out := make([]routing.ID, lookup1000InfoHashes)
	for i := range out {
		out[i] = routing.RandomID(r)
	}
	return out
}

// delayConn delays every datagram it sends by the current delay (none
// while it is zero) without blocking the writer. Datagrams still pending at
// Close are dropped; Close returns once no delayed write is running.
type delayConn struct {
	net.PacketConn
	delay     atomic.Int64 // time.Duration
	mu        sync.Mutex
	closed    bool
	pending   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

func (c *delayConn) setDelay(d time.Duration) { c.delay.Store(int64(d)) }

func (c *delayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	d := time.Duration(c.delay.Load())
	if d <= 0 {
		return c.PacketConn.WriteTo(p, addr)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.pending.Add(1)
	c.mu.Unlock()
	buf := slices.Clone(p)
	time.AfterFunc(d, func() {
		defer c.pending.Done()
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if !closed {
			_, _ = c.PacketConn.WriteTo(buf, addr)
		}
	})
	return len(p), nil
}

// Close may be called more than once (anacrolix closes its socket on a
// goroutine of its own); every call waits for the delayed writes to drain.
func (c *delayConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.closeOnce.Do(func() { c.closeErr = c.PacketConn.Close() })
	c.pending.Wait()
	return c.closeErr
}

// lookup1000Listen binds count sockets on 127.<net>.<i/250>.<i%250+1>,
// wrapped in delayConns if wrap.
func lookup1000Listen(b *testing.B, netByte, count int, wrap bool) ([]net.PacketConn, []*delayConn) {
	conns := make([]net.PacketConn, count)
	var dcs []*delayConn
	for i := range conns {
		addr := fmt.Sprintf("127.%d.%d.%d:0", netByte, i/lookup1000HostsPerNet, i%lookup1000HostsPerNet+1)
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			b.Fatalf("listen %s: %v", addr, err)
		}
		if wrap {
			dc := &delayConn{PacketConn: pc}
			dcs = append(dcs, dc)
			pc = dc
		}
		conns[i] = pc
	}
	return conns, dcs
}

// lookup1000Pool runs f(i) for i in [from, to) on workers goroutines and
// returns how many calls failed, and the first error.
func lookup1000Pool(from, to, workers int, f func(i int) error) (int, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fails int
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if fails++; first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return fails, first
}

// lookup1000Result is one timed lookup; first and eighth are -1 if not
// reached.
type lookup1000Result struct {
	queries, peers     int
	first, eighth, end time.Duration
}

// lookup1000Impl is one implementation's network, set up.
type lookup1000Impl struct {
	// bootstrap joins node i to the network.
	bootstrap func(ctx context.Context, i int) error
	// announce makes node i announce ih on port and returns the peer
	// address the others should then find.
	announce func(ctx context.Context, i int, ih routing.ID, port int) (netip.AddrPort, error)
	// lookup runs one get_peers lookup from node i, calling found for
	// every peer it yields.
	lookup func(ctx context.Context, i int, ih routing.ID, found func(netip.AddrPort)) (queries int, err error)
	// settle, if set, runs after each bootstrap round (anacrolix: every
	// server pings its table, as its TableMaintainer would every minute;
	// see newMixedNetwork).
	settle func(ctx context.Context)
	// tableSize is the number of nodes in node i's routing table.
	tableSize func(i int) int
}

func BenchmarkLookup1000(b *testing.B) {
	b.Run("ours", func(b *testing.B) { benchLookup1000(b, "ours", 10, false) })
	b.Run("anacrolix", func(b *testing.B) { benchLookup1000(b, "anacrolix", 11, false) })
	b.Run("ours-rtt50ms", func(b *testing.B) { benchLookup1000(b, "ours", 12, true) })
	b.Run("anacrolix-rtt50ms", func(b *testing.B) { benchLookup1000(b, "anacrolix", 13, true) })
}

func lookup1000Ours(b *testing.B, conns []net.PacketConn) lookup1000Impl {
	boot := make([]netip.AddrPort, 3)
	for i := range boot {
		boot[i] = addrPortOf(b, conns[i])
	}
	nodes := make([]*Node, len(conns))
	for i, pc := range conns {
		var bs []string
		for j, a := range boot {
			if j != i {
				bs = append(bs, a.String())
			}
		}
		n, err := New(Config{Conn: pc, Bootstrap: bs, QueryTimeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = n
	}
	b.Cleanup(func() {
		for _, n := range nodes {
			n.Close()
		}
	})
	return lookup1000Impl{
		bootstrap: func(ctx context.Context, i int) error {
			_, err := nodes[i].Bootstrap(ctx)
			return err
		},
		announce: func(ctx context.Context, i int, ih routing.ID, port int) (netip.AddrPort, error) {
			_, err := nodes[i].Announce(ctx, ih, port, nil)
			return netip.AddrPortFrom(nodes[i].Addr().Addr(), uint16(port)), err
		},
		tableSize: func(i int) int {
			st, err := nodes[i].Stats(context.Background())
			if err != nil {
				return -1
			}
			return st.Nodes
		},
		lookup: func(ctx context.Context, i int, ih routing.ID, found func(netip.AddrPort)) (int, error) {
			ch := make(chan netip.AddrPort, 256)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for p := range ch {
					found(p)
				}
			}()
			st, err := nodes[i].GetPeers(ctx, ih, ch)
			close(ch)
			<-done
			return st.Queries, err
		},
	}
}

func lookup1000Anacrolix(b *testing.B, conns []net.PacketConn, dcs []*delayConn) lookup1000Impl {
	boot := make([]netip.AddrPort, 3)
	for i := range boot {
		boot[i] = addrPortOf(b, conns[i])
	}
	servers := make([]*adht.Server, len(conns))
	for i, pc := range conns {
		cfg := adht.NewDefaultServerConfig()
		cfg.Conn = pc
		dhttest.Configure(cfg, func() []netip.AddrPort { return boot })
		s, err := adht.NewServer(cfg)
		if err != nil {
			b.Fatal(err)
		}
		servers[i] = s
	}
	b.Cleanup(func() {
		for _, s := range servers {
			s.Close() // closes its socket on a goroutine
		}
		for _, dc := range dcs {
			dc.Close() // waits for that close and the delayed writes
		}
		// Wait (a little) for anacrolix's closing goroutines, for goleak.
		deadline := time.Now().Add(5 * time.Second)
		for _, pc := range conns {
			for pc.SetDeadline(time.Time{}) == nil && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	})
	traverse := func(ctx context.Context, s *adht.Server, ih routing.ID, found func(netip.AddrPort), opts ...adht.AnnounceOpt) (int, error) {
		a, err := s.AnnounceTraversal(ih, opts...)
		if err != nil {
			return 0, err
		}
		defer a.Close()
		stop := context.AfterFunc(ctx, a.Close)
		defer stop()
		for pv := range a.Peers {
			for _, p := range pv.Peers {
				ip, _ := netip.AddrFromSlice(p.IP)
				found(netip.AddrPortFrom(ip.Unmap(), uint16(p.Port)))
			}
		}
		<-a.Finished()
		ts := a.TraversalStats()
		if ctx.Err() != nil {
			return int(ts.NumAddrsTried), ctx.Err()
		}
		return int(ts.NumAddrsTried), nil
	}
	return lookup1000Impl{
		bootstrap: func(ctx context.Context, i int) error {
			_, err := servers[i].BootstrapContext(ctx)
			return err
		},
		announce: func(ctx context.Context, i int, ih routing.ID, port int) (netip.AddrPort, error) {
			_, err := traverse(ctx, servers[i], ih, func(netip.AddrPort) {}, adht.AnnouncePeer(adht.AnnouncePeerOpts{Port: port}))
			return netip.AddrPortFrom(addrPortOf(b, conns[i]).Addr(), uint16(port)), err
		},
		tableSize: func(i int) int { return servers[i].Stats().Nodes },
		settle: func(ctx context.Context) {
			_, _ = lookup1000Pool(0, len(servers), lookup1000Workers, func(i int) error {
				for _, ni := range servers[i].Nodes() {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					servers[i].Ping(ni.Addr.UDP())
				}
				return nil
			})
		},
		lookup: func(ctx context.Context, i int, ih routing.ID, found func(netip.AddrPort)) (int, error) {
			return traverse(ctx, servers[i], ih, found)
		},
	}
}

func addrPortOf(b *testing.B, pc net.PacketConn) netip.AddrPort {
	ua, ok := pc.LocalAddr().(*net.UDPAddr)
	if !ok {
		b.Fatalf("local address %v is not UDP", pc.LocalAddr())
	}
	return ua.AddrPort()
}

func benchLookup1000(b *testing.B, impl string, netByte int, rtt bool) {
	count := lookup1000Nodes(b)
	setupStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), lookup1000SetupTimeout)
	defer cancel()

	conns, dcs := lookup1000Listen(b, netByte, count, rtt)
	var net1000 lookup1000Impl
	switch impl {
	case "ours":
		net1000 = lookup1000Ours(b, conns)
	case "anacrolix":
		net1000 = lookup1000Anacrolix(b, conns, dcs)
	default:
		b.Fatalf("unknown implementation %q", impl)
	}

	// Round 1: the three bootstrap nodes find each other, then everyone
	// joins through them. Rounds 2 and 3 (while setup has taken under a
	// minute) let the early joiners learn of the later ones, as periodic
	// refreshes would; their failures do not matter.
	for i := 0; i < 3; i++ {
		if err := net1000.bootstrap(ctx, i); err != nil {
			b.Fatalf("%s: bootstrap node %d: %v", impl, i, err)
		}
	}
	fails, err := lookup1000Pool(3, count, lookup1000Workers, func(i int) error { return net1000.bootstrap(ctx, i) })
	if net1000.settle != nil {
		net1000.settle(ctx)
	}
	b.Logf("%s: %d nodes, bootstrap round 1 in %v (%d failed: %v)", impl, count, time.Since(setupStart).Round(time.Millisecond), fails, err)
	if fails > count/10 || ctx.Err() != nil {
		b.Fatalf("%s: bootstrap round 1: %d of %d failed: %v", impl, fails, count, err)
	}
	for round := 2; round <= 3; round++ {
		if time.Since(setupStart) > lookup1000SetupTimeout/3 {
			b.Logf("%s: bootstrap round %d skipped: setup has taken %v", impl, round, time.Since(setupStart).Round(time.Millisecond))
			break
		}
		fails, err = lookup1000Pool(0, count, lookup1000Workers, func(i int) error { return net1000.bootstrap(ctx, i) })
		if net1000.settle != nil {
			net1000.settle(ctx)
		}
		b.Logf("%s: bootstrap round %d done at %v (%d failed: %v)", impl, round, time.Since(setupStart).Round(time.Millisecond), fails, err)
	}

	ihs := lookup1000InfoHashList()
	want := make([]map[netip.AddrPort]bool, len(ihs))
	var wantMu sync.Mutex
	for h := range want {
		want[h] = map[netip.AddrPort]bool{}
	}
	fails, err = lookup1000Pool(0, len(ihs)*benchAnnouncers, lookup1000AnnWorkers, func(k int) error {
		h, j := k/benchAnnouncers, k%benchAnnouncers
		actx, acancel := context.WithTimeout(ctx, lookup1000Timeout)
		defer acancel()
		port := 7000 + j
		peer, err := net1000.announce(actx, lookup1000Announcer(count, h, j), ihs[h], port)
		if err != nil {
			return fmt.Errorf("announce %d/%d: %w", h, j, err)
		}
		wantMu.Lock()
		want[h][peer] = true
		wantMu.Unlock()
		return nil
	})
	if fails > 0 {
		b.Fatalf("%s: %d announces failed: %v", impl, fails, err)
	}
	// anacrolix stores announced peers on a goroutine of its own.
	time.Sleep(100 * time.Millisecond)
	tables := 0
	for i := range count {
		tables += net1000.tableSize(i)
	}
	b.Logf("%s: %d nodes ready in %v; mean routing table %.1f nodes", impl, count,
		time.Since(setupStart).Round(time.Millisecond), float64(tables)/float64(count))
	if rtt {
		for _, dc := range dcs {
			dc.setDelay(lookup1000OneWay)
		}
		b.Logf("%s: %v one-way delay on", impl, lookup1000OneWay)
	}

	lookers := lookup1000Lookers(count)
	var results []lookup1000Result
	i := 0
	for b.Loop() {
		h := i % len(ihs)
		looker := lookers[i%len(lookers)]
		i++

		var (
			mu   sync.Mutex
			seen = map[netip.AddrPort]bool{}
			r    = lookup1000Result{first: -1, eighth: -1}
		)
		start := time.Now()
		found := func(p netip.AddrPort) {
			mu.Lock()
			defer mu.Unlock()
			if !want[h][p] || seen[p] {
				return
			}
			seen[p] = true
			r.peers++
			switch r.peers {
			case 1:
				r.first = time.Since(start)
			case benchAnnouncers:
				r.eighth = time.Since(start)
			}
		}
		lctx, lcancel := context.WithTimeout(context.Background(), lookup1000Timeout)
		q, err := net1000.lookup(lctx, looker, ihs[h], found)
		r.end = time.Since(start)
		lcancel()
		if err != nil {
			b.Fatalf("%s: lookup from node %d: %v", impl, looker, err)
		}
		mu.Lock()
		r.queries = q
		results = append(results, r)
		mu.Unlock()
	}
	lookup1000Report(b, count, results)
}

func lookup1000Report(b *testing.B, count int, rs []lookup1000Result) {
	if len(rs) == 0 {
		return
	}
	median := func(f func(lookup1000Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		m := v[len(v)/2]
		if len(v)%2 == 0 {
			m = (v[len(v)/2-1] + m) / 2
		}
		if math.IsInf(m, 1) {
			return -1
		}
		return m
	}
	ms := func(d time.Duration) float64 {
		if d < 0 {
			return math.Inf(1)
		}
		return d.Seconds() * 1e3
	}
	all8 := 0
	for _, r := range rs {
		if r.peers == benchAnnouncers {
			all8++
		}
	}
	b.ReportMetric(median(func(r lookup1000Result) float64 { return float64(r.queries) }), "queries/op")
	b.ReportMetric(median(func(r lookup1000Result) float64 { return ms(r.first) }), "first-peer-ms")
	b.ReportMetric(median(func(r lookup1000Result) float64 { return ms(r.eighth) }), "eighth-peer-ms")
	b.ReportMetric(median(func(r lookup1000Result) float64 { return ms(r.end) }), "end-ms")
	b.ReportMetric(median(func(r lookup1000Result) float64 { return float64(r.peers) }), "peers/op")
	b.ReportMetric(float64(all8), "all8-lookups")
	b.ReportMetric(float64(count), "nodes")
}
