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
// Every socket is wrapped in a delayConn. In the -rtt50ms variants it
// sends each datagram 25 ms after WriteTo returns, so a query's round trip
// takes about 50 ms. The delay is switched on only after bootstrap and the
// announces: with it on from the start, setting up 1,000 nodes takes far
// longer than the 3 minutes allowed, and the routing tables the lookups
// start from would be the same anyway. The delayConn also counts what the
// node sends: all KRPC queries (reported for the setup, per node), and,
// during a timed lookup, the get_peers queries and their distinct
// destinations, so both implementations are measured the same way, on the
// wire.
//
// anacrolix servers run with dhttest.Configure: no send limit
// (SendLimiter is rate.NewLimiter(rate.Inf, 0), in place of the package's
// global 25 packets/s limiter), queries resent after 200 ms (NumTries is 1
// for get_peers, so that only bounds each query), BEP 42 off.
//
// Each b.Loop iteration is one get_peers lookup for the next info-hash,
// from the next of lookup1000Lookers (nodes that never announced). The
// figures reported are medians over the iterations: queries/op (get_peers
// queries the looker sent), distinct-nodes/op (the distinct addresses it
// sent them to), first-peer-ms and eighth-peer-ms (time until the first
// and the eighth announced peer arrived; a lookup that never got there
// counts as infinitely slow, and an infinite median is reported as -1),
// end-ms (until the lookup returned) and peers/op (announced peers found,
// of 8). all8-lookups counts the lookups that found all 8 and nodes is the
// network size. setup-queries/node is the mean number of KRPC queries a
// node sent during setup (bootstrap rounds and announces); for ours the
// log breaks it down by method, and tells how many of the find_node and
// get_peers queries were sent by lookups (the rest: bucket refreshes,
// node-cache fills, checks of new queriers).
//
// With NODE_BENCH_JSON=path, the figures are also written there in the
// shared bench schema, one section per network (loopback, 50 ms RTT),
// once all four sub-benchmarks that the -bench pattern selects have run.
//
// NODE_BENCH_LOOKUP1000_TRACE=1 logs, for our lookups, where each started:
// the node cache's size and, for the table's and the cache's three
// nearest nodes, their rank among all nodes by distance to the info-hash
// and how many of the announced peers each stores.

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/internal/bench/benchfmt"
	"node/internal/dhttest"
	"node/krpc"
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

// delayConn is a dhttest.DelayConn that also counts the KRPC queries
// sent, and, while a sendCount is attached, the get_peers queries and
// their destinations.
type delayConn struct {
	*dhttest.DelayConn
	queries atomic.Int64 // every KRPC query sent
	count   atomic.Pointer[sendCount]
}

// sendCount is what one timed lookup sent.
type sendCount struct {
	mu      sync.Mutex
	queries int
	dests   map[netip.AddrPort]bool
}

// setDelay delays every later datagram by d (none while it is zero).
func (c *delayConn) setDelay(d time.Duration) {
	c.SetDelay(func(net.Addr) time.Duration { return d })
}

// Bencoded dictionaries sort their keys, so a query holds "1:q<method>"
// and ends its dictionary with "1:y1:qe", whichever implementation wrote it.
var (
	krpcQueryTail = []byte("1:y1:qe")
	krpcGetPeers  = []byte("1:q9:get_peers")
)

func (c *delayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if bytes.HasSuffix(p, krpcQueryTail) {
		c.queries.Add(1)
		if sc := c.count.Load(); sc != nil && bytes.Contains(p, krpcGetPeers) {
			ua, _ := addr.(*net.UDPAddr)
			ap := ua.AddrPort()
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			sc.mu.Lock()
			sc.queries++
			sc.dests[ap] = true
			sc.mu.Unlock()
		}
	}
	return c.DelayConn.WriteTo(p, addr)
}

// lookup1000Listen binds count sockets on 127.<net>.<i/250>.<i%250+1>,
// each wrapped in a delayConn.
func lookup1000Listen(b *testing.B, netByte, count int) ([]net.PacketConn, []*delayConn) {
	conns := make([]net.PacketConn, count)
	dcs := make([]*delayConn, count)
	for i := range conns {
		addr := fmt.Sprintf("127.%d.%d.%d:0", netByte, i/lookup1000HostsPerNet, i%lookup1000HostsPerNet+1)
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			b.Fatalf("listen %s: %v", addr, err)
		}
		dcs[i] = &delayConn{DelayConn: dhttest.NewDelayConn(pc)}
		conns[i] = dcs[i]
	}
	return conns, dcs
}

// lookup1000Result is one timed lookup; first and eighth are -1 if not
// reached.
type lookup1000Result struct {
	queries, distinct, peers int
	first, eighth, end       time.Duration
}

// lookup1000Impl is one implementation's network, set up.
type lookup1000Impl struct {
	// bootstrap joins node i to the network.
	bootstrap func(ctx context.Context, i int) error
	// announce makes node i announce ih on port and returns the peer
	// address the others should then find.
	announce func(ctx context.Context, i int, ih routing.ID, port int) (netip.AddrPort, error)
	// lookup runs one get_peers lookup from node i, calling found for
	// every peer it yields. It returns the implementation's own count of
	// the queries it sent (ours: LookupStats.Queries; anacrolix:
	// NumAddrsTried), which the benchmark checks against the wire's.
	lookup func(ctx context.Context, i int, ih routing.ID, found func(netip.AddrPort)) (queries int, err error)
	// settle, if set, runs after each bootstrap round (anacrolix: every
	// server pings its table, as its TableMaintainer would every minute;
	// see newMixedNetwork).
	settle func(ctx context.Context)
	// tableSize is the number of nodes in node i's routing table.
	tableSize func(i int) int
	// sent, if set, describes what the nodes sent, for the log.
	sent func() string
	// trace, if set, describes where node i's lookup for ih starts.
	trace func(i int, ih routing.ID, want map[netip.AddrPort]bool) string
}

func BenchmarkLookup1000(b *testing.B) {
	var sum lookup1000Summary
	b.Run("ours", func(b *testing.B) { sum.add("ours", false, benchLookup1000(b, "ours", 10, false)) })
	b.Run("anacrolix", func(b *testing.B) { sum.add("anacrolix", false, benchLookup1000(b, "anacrolix", 11, false)) })
	b.Run("ours-rtt50ms", func(b *testing.B) { sum.add("ours", true, benchLookup1000(b, "ours", 12, true)) })
	b.Run("anacrolix-rtt50ms", func(b *testing.B) { sum.add("anacrolix", true, benchLookup1000(b, "anacrolix", 13, true)) })
	if path := os.Getenv("NODE_BENCH_JSON"); path != "" {
		if err := benchfmt.Merge(path, sum.sections()); err != nil {
			b.Fatal(err)
		}
	}
}

func lookup1000Ours(b *testing.B, conns []net.PacketConn) lookup1000Impl {
	boot := make([]netip.AddrPort, 3)
	for i := range boot {
		boot[i] = addrPortOf(b, conns[i])
	}
	nodes := make([]*Node, len(conns))
	var lookupQueries [krpc.NumMethodClasses]atomic.Int64
	onLookup := func(d LookupDone) { lookupQueries[krpc.ClassOf(d.Method)].Add(int64(d.Stats.Queries)) }
	for i, pc := range conns {
		var bs []string
		for j, a := range boot {
			if j != i {
				bs = append(bs, a.String())
			}
		}
		n, err := New(Config{Conn: pc, Bootstrap: bs, QueryTimeout: time.Second, OnLookup: onLookup})
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
		trace: func(i int, ih routing.ID, want map[netip.AddrPort]bool) string {
			byDist := slices.Clone(nodes)
			slices.SortFunc(byDist, func(a, b *Node) int { return a.ID().Distance(ih).Cmp(b.ID().Distance(ih)) })
			rank := map[netip.AddrPort]int{}
			holds := map[netip.AddrPort]int{}
			for r, n := range byDist {
				rank[n.Addr()] = r
				for _, p := range n.store.get(ih, time.Now(), 2*benchAnnouncers) {
					if want[p] {
						holds[n.Addr()]++
					}
				}
			}
			desc := func(cs []routing.Contact) string {
				var out []string
				for _, c := range cs {
					out = append(out, fmt.Sprintf("#%d (holds %d)", rank[c.Addr], holds[c.Addr]))
				}
				return strings.Join(out, ", ")
			}
			tc, _ := nodes[i].closest(context.Background(), ih, 3)
			return fmt.Sprintf("cache %d nodes; table's nearest %s; cache's nearest %s",
				nodes[i].cache.len(), desc(tc), desc(nodes[i].cache.closest(ih, 3)))
		},
		tableSize: func(i int) int {
			st, err := nodes[i].Stats(context.Background())
			if err != nil {
				return -1
			}
			return st.Nodes
		},
		sent: func() string {
			var by krpc.ByMethod
			for _, n := range nodes {
				st, err := n.Stats(context.Background())
				if err != nil {
					continue
				}
				for c, v := range st.Transport.QueriesOutByMethod {
					by[c] += v
				}
			}
			per := func(v int64) float64 { return float64(v) / float64(len(nodes)) }
			var parts []string
			for c, v := range by {
				if v > 0 {
					parts = append(parts, fmt.Sprintf("%s %.1f", krpc.MethodClass(c), per(int64(v))))
				}
			}
			return fmt.Sprintf("per node: %s; of them in lookups: find_node %.1f, get_peers %.1f", strings.Join(parts, ", "),
				per(lookupQueries[krpc.ClassFindNode].Load()), per(lookupQueries[krpc.ClassGetPeers].Load()))
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
			_, _ = dhttest.Pool(0, len(servers), lookup1000Workers, func(i int) error {
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

// lookup1000Run is what one sub-benchmark measured.
type lookup1000Run struct {
	nodes        int
	results      []lookup1000Result
	setupQueries float64 // mean KRPC queries per node during setup
	setup        time.Duration
}

func benchLookup1000(b *testing.B, impl string, netByte int, rtt bool) *lookup1000Run {
	count := lookup1000Nodes(b)
	setupStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), lookup1000SetupTimeout)
	defer cancel()

	conns, dcs := lookup1000Listen(b, netByte, count)
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
	fails, err := dhttest.Pool(3, count, lookup1000Workers, func(i int) error { return net1000.bootstrap(ctx, i) })
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
		fails, err = dhttest.Pool(0, count, lookup1000Workers, func(i int) error { return net1000.bootstrap(ctx, i) })
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
	fails, err = dhttest.Pool(0, len(ihs)*benchAnnouncers, lookup1000AnnWorkers, func(k int) error {
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
	var setupQueries int64
	for _, dc := range dcs {
		setupQueries += dc.queries.Load()
	}
	run := &lookup1000Run{nodes: count, setupQueries: float64(setupQueries) / float64(count), setup: time.Since(setupStart)}
	b.Logf("%s: %d nodes ready in %v; mean routing table %.1f nodes; %.0f queries sent per node", impl, count,
		run.setup.Round(time.Millisecond), float64(tables)/float64(count), run.setupQueries)
	if net1000.sent != nil {
		b.Logf("%s: queries sent %s", impl, net1000.sent())
	}
	if rtt {
		for _, dc := range dcs {
			dc.setDelay(lookup1000OneWay)
		}
		b.Logf("%s: %v one-way delay on", impl, lookup1000OneWay)
	}

	lookers := lookup1000Lookers(count)
	trace := net1000.trace != nil && os.Getenv("NODE_BENCH_LOOKUP1000_TRACE") != ""
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
		var where string
		if trace {
			b.StopTimer()
			where = net1000.trace(looker, ihs[h], want[h])
			b.StartTimer()
			start = time.Now()
		}
		sc := &sendCount{dests: map[netip.AddrPort]bool{}}
		dcs[looker].count.Store(sc)
		lctx, lcancel := context.WithTimeout(context.Background(), lookup1000Timeout)
		queried, err := net1000.lookup(lctx, looker, ihs[h], found)
		r.end = time.Since(start)
		lcancel()
		dcs[looker].count.Store(nil)
		if err != nil {
			b.Fatalf("%s: lookup from node %d: %v", impl, looker, err)
		}
		sc.mu.Lock()
		r.queries, r.distinct = sc.queries, len(sc.dests)
		sc.mu.Unlock()
		if queried != r.queries {
			// Both count every get_peers they send (anacrolix's
			// NumAddrsTried counts an address again each time it
			// queries it again), so a difference is a counting bug here.
			b.Errorf("%s: lookup %d: the implementation counts %d queries, the wire %d", impl, i, queried, r.queries)
		}
		mu.Lock()
		run.results = append(run.results, r)
		if trace {
			b.Logf("lookup %d from node %d: %s; then %d queries, 8th peer at %v, end at %v", i, looker, where,
				r.queries, r.eighth.Round(time.Microsecond), r.end.Round(time.Microsecond))
		}
		mu.Unlock()
	}
	lookup1000Report(b, run)
	return run
}

// lookup1000Median is the median of f over rs; an infinite median is -1.
func lookup1000Median(rs []lookup1000Result, f func(lookup1000Result) float64) float64 {
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

// lookup1000MS is d in milliseconds, infinite if not reached (negative).
func lookup1000MS(d time.Duration) float64 {
	if d < 0 {
		return math.Inf(1)
	}
	return d.Seconds() * 1e3
}

// lookup1000Figures are one run's medians, in the order they are reported.
func lookup1000Figures(run *lookup1000Run) (queries, distinct, first, eighth, end, peers float64, all8 int) {
	rs := run.results
	med := func(f func(lookup1000Result) float64) float64 { return lookup1000Median(rs, f) }
	for _, r := range rs {
		if r.peers == benchAnnouncers {
			all8++
		}
	}
	return med(func(r lookup1000Result) float64 { return float64(r.queries) }),
		med(func(r lookup1000Result) float64 { return float64(r.distinct) }),
		med(func(r lookup1000Result) float64 { return lookup1000MS(r.first) }),
		med(func(r lookup1000Result) float64 { return lookup1000MS(r.eighth) }),
		med(func(r lookup1000Result) float64 { return lookup1000MS(r.end) }),
		med(func(r lookup1000Result) float64 { return float64(r.peers) }),
		all8
}

func lookup1000Report(b *testing.B, run *lookup1000Run) {
	if len(run.results) == 0 {
		return
	}
	queries, distinct, first, eighth, end, peers, all8 := lookup1000Figures(run)
	b.ReportMetric(queries, "queries/op")
	b.ReportMetric(distinct, "distinct-nodes/op")
	b.ReportMetric(first, "first-peer-ms")
	b.ReportMetric(eighth, "eighth-peer-ms")
	b.ReportMetric(end, "end-ms")
	b.ReportMetric(peers, "peers/op")
	b.ReportMetric(float64(all8), "all8-lookups")
	b.ReportMetric(float64(run.nodes), "nodes")
	b.ReportMetric(run.setupQueries, "setup-queries/node")
}

// lookup1000Summary collects the sub-benchmarks' runs for NODE_BENCH_JSON.
type lookup1000Summary struct {
	runs [2]map[string]*lookup1000Run // [0] loopback, [1] 50 ms RTT; by implementation
}

func (s *lookup1000Summary) add(impl string, rtt bool, run *lookup1000Run) {
	i := 0
	if rtt {
		i = 1
	}
	if s.runs[i] == nil {
		s.runs[i] = map[string]*lookup1000Run{}
	}
	if run != nil && len(run.results) > 0 {
		s.runs[i][impl] = run
	}
}

// sections turns the runs into the schema's sections; a network whose
// run of ours is missing (filtered out by -bench) has none.
func (s *lookup1000Summary) sections() []benchfmt.Section {
	var out []benchfmt.Section
	for i, variant := range []string{"loopback", "50 ms RTT"} {
		ours := s.runs[i]["ours"]
		if ours == nil {
			continue
		}
		theirs := s.runs[i]["anacrolix"]
		n := len(ours.results)
		sec := benchfmt.Section{
			Name: fmt.Sprintf("DHT lookup, %s nodes, %s (median of %d)", lookup1000Thousands(ours.nodes), variant, n),
			Notes: []string{
				fmt.Sprintf("%d info-hashes, each announced by %d nodes; each lookup from a node that announced nothing; ours in a network of our nodes, anacrolix's in a network of anacrolix/dht v2.23.0 servers with no send limit", lookup1000InfoHashes, benchAnnouncers),
				"queries and nodes counted on the looker's socket: get_peers queries sent, and their distinct destinations; anacrolix's traversal queries some addresses twice (its own count, NumAddrsTried, equals the queries sent, not the distinct nodes)",
				fmt.Sprintf("setup (3 bootstrap rounds, then the announces) took %v and %.0f KRPC queries per node for ours (including the node-cache fill of Bootstrap)", ours.setup.Round(100*time.Millisecond), ours.setupQueries),
				"go test -run '^$' -bench Lookup1000 -benchtime 9x ./dht",
			},
		}
		if theirs != nil {
			sec.Notes[2] += fmt.Sprintf(", %v and %.0f per node for anacrolix", theirs.setup.Round(100*time.Millisecond), theirs.setupQueries)
		}
		oq, od, of, o8, oe, op, oa := lookup1000Figures(ours)
		var tq, td, tf, t8, te, tp float64
		var ta int
		if theirs != nil {
			tq, td, tf, t8, te, tp, ta = lookup1000Figures(theirs)
		}
		row := func(metric, unit, better string, o, t float64, target string, met func(o, t float64) bool) {
			r := benchfmt.Row{Metric: metric, Unit: unit, Ours: o, Better: better, Target: target}
			if theirs != nil {
				r.Anacrolix = &t
			}
			if target != "" && (theirs != nil || !strings.HasSuffix(target, "x")) {
				m := met(o, t)
				r.Met = &m
			}
			sec.Rows = append(sec.Rows, r)
		}
		ratio := func(limit float64) func(o, t float64) bool {
			return func(o, t float64) bool { return o >= 0 && t > 0 && o <= limit*t }
		}
		row("queries sent", "queries", "lower", oq, tq, "<= 1.0x", ratio(1))
		row("distinct nodes queried", "nodes", "lower", od, td, "", nil)
		row("time to first peer", "ms", "lower", of, tf, "", nil)
		if i == 1 {
			row("time to 8th peer", "ms", "lower", o8, t8, "<= 0.7x", ratio(0.7))
		} else {
			row("time to 8th peer", "ms", "lower", o8, t8, "", nil)
		}
		row("time to end", "ms", "lower", oe, te, "", nil)
		row("peers found (of 8, median)", "peers", "higher", op, tp, "", nil)
		want := n - n/9 // 8 of 9
		row("lookups that found all 8", "lookups", "higher", float64(oa), float64(ta),
			fmt.Sprintf(">= %d of %d", want, n), func(o, _ float64) bool { return int(o) >= want })
		if o8 < 0 || (theirs != nil && t8 < 0) {
			sec.Notes = append(sec.Notes, "time to 8th peer -1: the median lookup did not find all 8")
		}
		out = append(out, sec)
	}
	return out
}

func lookup1000Thousands(n int) string {
	if n < 1000 {
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("%d,%03d", n/1000, n%1000)
}
