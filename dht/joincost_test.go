package dht

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// joinQueryBudget bounds the queries a node sends to join a network of a
// few hundred nodes: its Bootstrap (the own-ID lookup, refreshHops
// queries for each empty bucket, the node-cache fill of the regions
// nothing else covered) and the verification pings of the nodes that
// query it meanwhile. anacrolix/dht's bootstrap, with the pings of its
// table that follow, costs about 25 queries a round in
// BenchmarkLookup1000's network of 1,000; ours cost about 175 here when
// each far bucket short of K got a whole lookup and the fill 64 queries,
// and costs 30-45 now.
const joinQueryBudget = 60

// A node joining a formed network costs it no more queries than
// joinQueryBudget, everything it sent until its background work ended
// counted, and still comes out with a table and a node cache that
// lookups can start from.
func TestJoinCost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	slowOK := func(c *Config) { c.QueryTimeout = 5 * time.Second }
	nodes := startOurs(t, 116, 200, nil, slowOK)
	bootstrapAll(t, ctx, nodes)

	ticks := make(chan tickReport)
	n, err := New(Config{
		Conn:         listenLoopback(t, 117, 1),
		Bootstrap:    []string{nodes[0].Addr().String()},
		QueryTimeout: 5 * time.Second,
		TickInterval: 10 * time.Millisecond,
		afterTick: func(r tickReport) {
			select {
			case ticks <- r:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	size, err := n.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Bootstrap leaves the cache fill and the pings running: wait for a
	// tick that finds nothing in the background.
	for idle := false; !idle; {
		select {
		case r := <-ticks:
			idle = !r.busy
		case <-ctx.Done():
			t.Fatal("the join's background work never ended")
		}
	}
	st, err := n.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := st.Transport.QueriesOut
	t.Logf("join: %d queries; table %d nodes, cache %d", sent, size, n.cache.len())
	if sent > joinQueryBudget {
		t.Fatalf("joining sent %d queries, budget %d", sent, joinQueryBudget)
	}
	if size < routing.K {
		t.Fatalf("joined with %d nodes in the table", size)
	}
	if c := n.cache.len(); c < len(nodes)/4 {
		t.Fatalf("joined with %d of %d nodes in the node cache", c, len(nodes))
	}
	// A lookup from the joiner still finds the node nearest a target.
	target := routing.RandomID(rand.New(rand.NewPCG(1, 2)))
	nearest := nodes[0]
	for _, m := range nodes {
		if m.ID().Distance(target).Cmp(nearest.ID().Distance(target)) < 0 {
			nearest = m
		}
	}
	got, _, err := n.findNode(ctx, target)
	if err != nil || len(got) == 0 || got[0].ID != nearest.ID() {
		t.Fatalf("lookup after join: %d nodes, %v; want %v first", len(got), err, nearest.ID())
	}
}

// A node that queries us enters the node cache, once it answers our
// check, while the cache has room; but queriers, which came unasked, never
// push out what our own lookups learnt, nor change the ID cached for an
// address. (Queriers that never answer stay out: see
// TestForgedQueriersStayOutOfCache.)
func TestQueriersFillCacheOnlyIntoRoom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := testRand()
	const size = 8
	n := startNode(t, 118, 1, func(c *Config) { c.NodeCacheSize = size })
	trs := map[int]*krpc.Transport{}
	query := func(host int, id routing.ID) {
		t.Helper()
		tr := trs[host]
		if tr == nil {
			var err error
			tr, err = krpc.New(krpc.Config{Conn: listenLoopback(t, 119, host), Handler: func(_ netip.AddrPort, q *krpc.Msg) *krpc.Msg {
				return &krpc.Msg{R: &krpc.Return{ID: id}} // the check's answer, under the ID it queried with
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tr.Close() })
			trs[host] = tr
		}
		if _, err := tr.Query(ctx, n.Addr(), krpc.MethodPing, &krpc.Args{ID: id}); err != nil {
			t.Fatal(err)
		}
		// The loop has taken the queriedEvent once Stats, queued behind
		// it, returns, and the check has ended when every query out has.
		testutil.WaitFor(t, 5*time.Second, "the check to end", func() bool {
			st, err := n.Stats(ctx)
			tr := st.Transport
			return err == nil && tr.QueriesOut == tr.Timeouts+tr.ResponsesIn+tr.ErrorsIn+tr.SendErrors
		})
	}
	first := routing.RandomID(r)
	query(1, first)
	testutil.WaitFor(t, 5*time.Second, "the checked querier in the cache", func() bool {
		got := n.cache.closest(first, 1)
		return len(got) == 1 && got[0].ID == first
	})
	// What a lookup learnt fills the rest.
	learnt := map[netip.AddrPort]routing.ID{}
	for i := range size - 1 {
		c := routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 120, byte(i + 1)}), 6881)}
		n.cache.add(c)
		learnt[c.Addr] = c.ID
	}
	// Forged queriers: new addresses, and the first's address under
	// another ID.
	for i := range 2 * size {
		query(2+i, routing.RandomID(r))
	}
	query(1, routing.RandomID(r))
	if got := n.cache.len(); got != size {
		t.Fatalf("cache holds %d, capacity %d", got, size)
	}
	for a, id := range learnt {
		if got := n.cache.closest(id, 1); len(got) != 1 || got[0].Addr != a {
			t.Fatalf("learnt node %v pushed out by queriers", a)
		}
	}
	if got := n.cache.closest(first, 1); len(got) != 1 || got[0].ID != first {
		t.Fatalf("a querier changed the ID cached for %v: %v", got[0].Addr, got[0].ID)
	}
}

// However many new nodes query us, and however fast their pings fail,
// the loop starts no more than pingBurst pings while the clock stands
// still (pingBurst-pingReserve for queriers), and pingRate a second after.
func TestPingRateBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := newFakeClock()
	n := startNode(t, 121, 1, func(c *Config) {
		c.Now = clock.Now
		c.QueryTimeout = time.Millisecond // each ping fails at once, freeing its slot
	})
	var pinged atomic.Int64
	r := testRand()
	flood := func(count int) {
		t.Helper()
		for i := range count {
			tr, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 122, 1+i%200), Handler: func(_ netip.AddrPort, q *krpc.Msg) *krpc.Msg {
				if q.Q == krpc.MethodPing || q.Q == krpc.MethodFindNode { // see verify
					pinged.Add(1)
				}
				return nil // never answers
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tr.Close() })
			if _, err := tr.Query(ctx, n.Addr(), krpc.MethodFindNode, &krpc.Args{ID: routing.RandomID(r), Target: &routing.ID{}}); err != nil {
				t.Fatal(err)
			}
			// One at a time, each once the loop has taken it in (Stats
			// queues behind its event) and every ping has timed out, so
			// that maxPings is never what holds a ping back.
			testutil.WaitFor(t, 5*time.Second, "the pings to time out", func() bool {
				st, err := n.Stats(ctx)
				tr := st.Transport
				return err == nil && tr.QueriesOut == tr.Timeouts+tr.ResponsesIn+tr.ErrorsIn+tr.SendErrors
			})
		}
	}
	flood(2 * pingBurst)
	// The pings that were sent have all arrived: each timed out after
	// its datagram was on loopback, and the handler counts on read.
	testutil.WaitFor(t, 5*time.Second, "the pings to arrive", func() bool { return pinged.Load() >= pingBurst-pingReserve })
	if got := pinged.Load(); got > pingBurst-pingReserve {
		t.Fatalf("%d pings from %d queriers with the clock still, bound pingBurst-pingReserve = %d", got, 2*pingBurst, pingBurst-pingReserve)
	}
	before := pinged.Load()
	clock.Advance(2 * time.Second)
	flood(pingBurst)
	if got := pinged.Load() - before; got > 2*pingRate {
		t.Fatalf("%d pings two seconds on, bound 2 × pingRate = %d", got, 2*pingRate)
	}
}

// A node checks a new querier with a find_node while its node cache is
// thin, and caches the nodes the answer names; with the cache past a
// quarter of its capacity, the check is a plain ping.
func TestVerifyFillsCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := testRand()
	const size = 4 * routing.K
	n := startNode(t, 123, 1, func(c *Config) { c.NodeCacheSize = size })
	var named []routing.Contact
	for i := range routing.K {
		named = append(named, routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 124, byte(i + 1)}), 6881)})
	}
	methods := make(chan string, 4)
	querier := func(host int) {
		t.Helper()
		id := routing.RandomID(r)
		tr, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 125, host), Handler: func(_ netip.AddrPort, q *krpc.Msg) *krpc.Msg {
			methods <- q.Q
			return &krpc.Msg{R: &krpc.Return{ID: id, Nodes: named}}
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		if _, err := tr.Query(ctx, n.Addr(), krpc.MethodPing, &krpc.Args{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	querier(1)
	select {
	case m := <-methods:
		if m != krpc.MethodFindNode {
			t.Fatalf("a thin cache's check was %q", m)
		}
	case <-ctx.Done():
		t.Fatal("the querier was never checked")
	}
	testutil.WaitFor(t, 5*time.Second, "the answer's nodes in the cache", func() bool {
		return n.cache.len() >= routing.K
	})
	for _, c := range named {
		if got := n.cache.closest(c.ID, 1); len(got) != 1 || got[0] != c {
			t.Fatalf("named node %v not cached", c)
		}
	}
	for i := range size {
		n.cache.add(routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 126, byte(i + 1)}), 6881)})
	}
	querier(2)
	select {
	case m := <-methods:
		if m != krpc.MethodPing {
			t.Fatalf("a full cache's check was %q", m)
		}
	case <-ctx.Done():
		t.Fatal("the querier was never checked")
	}
}
