package dht

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/testutil"
	"node/routing"
)

func cacheContact(r *rand.Rand, i int) routing.Contact {
	return routing.Contact{
		ID:   routing.RandomID(r),
		Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 110, byte(i%250 + 1)}), uint16(1000+i)),
	}
}

// checkCacheInvariants: slots mirrors the LRU exactly.
func checkCacheInvariants(t *testing.T, nc *nodeCache) {
	t.Helper()
	if len(nc.slots) != nc.lru.Len() {
		t.Fatalf("%d slots, %d LRU entries", len(nc.slots), nc.lru.Len())
	}
	for i, s := range nc.slots {
		if s.idx != i {
			t.Fatalf("slot %d says it is at %d", i, s.idx)
		}
		if got, ok := nc.lru.Peek(s.c.Addr); !ok || got != s {
			t.Fatalf("slot %d (%v) is not the LRU's entry for its address", i, s.c.Addr)
		}
	}
}

func TestNodeCacheBoundedLRU(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const size = 16
	nc := newNodeCache(size, false)
	var all []routing.Contact
	for i := range 100 {
		c := cacheContact(r, i)
		all = append(all, c)
		if !nc.add(c) {
			t.Fatalf("contact %d not new", i)
		}
		if i%7 == 0 {
			// Hearing of an old one again keeps it.
			nc.add(all[len(all)/2])
		}
		if nc.len() > size {
			t.Fatalf("cache holds %d, bound %d", nc.len(), size)
		}
		checkCacheInvariants(t, nc)
	}
	if nc.len() != size {
		t.Fatalf("cache holds %d, want %d", nc.len(), size)
	}
	if !nc.lru.Contains(all[99].Addr) || nc.lru.Contains(all[0].Addr) {
		t.Fatal("the cache should keep the most recently heard of and drop the oldest")
	}

	// closest agrees with a brute-force sort of what is kept.
	target := routing.RandomID(r)
	var kept []routing.Contact
	for _, s := range nc.slots {
		kept = append(kept, s.c)
	}
	slices.SortFunc(kept, func(a, b routing.Contact) int { return a.ID.Distance(target).Cmp(b.ID.Distance(target)) })
	if got := nc.closest(target, 5); !slices.Equal(got, kept[:5]) {
		t.Fatalf("closest(5) = %v, want %v", got, kept[:5])
	}
	if got := nc.closest(target, 100); len(got) != size {
		t.Fatalf("closest(100) returned %d, want all %d", len(got), size)
	}

	// A new ID for a known address replaces the old one.
	c := kept[0]
	c.ID = routing.RandomID(r)
	if nc.add(c) {
		t.Fatal("known address reported new")
	}
	if got, _ := nc.lru.Peek(c.Addr); got.c.ID != c.ID {
		t.Fatal("the cache kept the old ID")
	}

	for _, c := range kept {
		nc.remove(c.Addr)
		checkCacheInvariants(t, nc)
	}
	if nc.len() != 0 || len(nc.closest(target, 3)) != 0 {
		t.Fatalf("cache not empty after removing all: %d", nc.len())
	}

	off := newNodeCache(-1, false)
	if off.enabled() || off.add(all[0]) || off.len() != 0 || off.closest(target, 3) != nil {
		t.Fatal("a disabled cache holds something")
	}
}

func TestNodeCacheBEP42(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	nc := newNodeCache(8, true)
	public := netip.MustParseAddr("203.0.113.7")
	if nc.add(routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(public, 6881)}) {
		t.Fatal("kept a public node whose ID does not match its IP")
	}
	if !nc.add(routing.Contact{ID: routing.SecureID(public, 1, r), Addr: netip.AddrPortFrom(public, 6882)}) {
		t.Fatal("refused a public node with a BEP 42 ID")
	}
	if !nc.add(routing.Contact{ID: routing.RandomID(r), Addr: netip.MustParseAddrPort("127.0.110.9:6881")}) {
		t.Fatal("refused a loopback node (BEP 42 exempt)")
	}
	if nc.add(routing.Contact{Addr: netip.MustParseAddrPort("127.0.110.10:6881")}) {
		t.Fatal("kept a node without an ID")
	}
}

func TestRTTEstimatorSoftTimeout(t *testing.T) {
	var e rttEstimator
	if got := e.softTimeout(10 * time.Second); got != softRTTs*initialRTT {
		t.Fatalf("before any sample: %v", got)
	}
	if got := e.softTimeout(time.Second); got != 500*time.Millisecond {
		t.Fatalf("not capped at half the hard timeout: %v", got)
	}
	for range 20 {
		e.observe(time.Millisecond)
	}
	if got := e.softTimeout(time.Second); got != minSoftTimeout {
		t.Fatalf("fast answers: %v, want the floor %v", got, minSoftTimeout)
	}
	for range 50 {
		e.observe(300 * time.Millisecond)
	}
	if got := e.softTimeout(10 * time.Second); got < 300*time.Millisecond || got > 600*time.Millisecond {
		t.Fatalf("300 ms answers: soft timeout %v", got)
	}
}

// Heavy-tailed round trips (most answers fast, a few very late) make
// rttvar large: the soft timeout is then softRTTs smoothed round trips,
// not srtt+4*rttvar; steady ones keep srtt+4*rttvar, which is below it.
func TestRTTEstimatorCappedAtSoftRTTs(t *testing.T) {
	var e rttEstimator
	e.observe(100 * time.Millisecond) // srtt 100, rttvar 50
	if got, want := e.softTimeout(10*time.Second), 200*time.Millisecond; got != want {
		t.Fatalf("first sample: %v, want %v (srtt+4*rttvar would be 300 ms)", got, want)
	}
	// Then 900 ms: rttvar += (800-50)/4 = 237.5, srtt += 800/8 = 200 ms.
	e.observe(900 * time.Millisecond)
	if e.srtt != 200*time.Millisecond || e.rttvar != 237500*time.Microsecond {
		t.Fatalf("srtt %v rttvar %v", e.srtt, e.rttvar)
	}
	if got, want := e.softTimeout(10*time.Second), 400*time.Millisecond; got != want {
		t.Fatalf("after a late answer: %v, want %v", got, want)
	}
	// Steady 100 ms answers: rttvar decays below srtt/4 and the RFC 6298
	// timeout is the smaller again.
	var s rttEstimator
	for range 40 {
		s.observe(100 * time.Millisecond)
	}
	want := s.srtt + 4*s.rttvar
	if want >= softRTTs*s.srtt {
		t.Fatalf("steady answers: srtt %v rttvar %v", s.srtt, s.rttvar)
	}
	if got := s.softTimeout(10 * time.Second); got != max(want, minSoftTimeout) {
		t.Fatalf("steady answers: %v, want %v", got, want)
	}
	// The half hard timeout still caps it.
	if got := e.softTimeout(600 * time.Millisecond); got != 300*time.Millisecond {
		t.Fatalf("not capped at half the hard timeout: %v", got)
	}
}

// A lookup starts from the cache too: a node whose routing table is empty
// and that knows no bootstrap address finds a peer through a node that is
// only in its cache. Nothing enters the routing table from the cache
// without answering.
func TestLookupSeedsFromCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	holder := startOurs(t, 111, 1, nil, nil)[0]
	ih := routing.RandomID(rand.New(rand.NewPCG(5, 6)))
	peer := netip.MustParseAddrPort("10.1.2.3:4567")
	holder.store.add(ih, peer, time.Now())

	looker := startOurs(t, 112, 1, nil, nil)[0]
	dead := listenLoopback(t, 112, 2) // never answers
	defer dead.Close()
	deadAddr := addrOf(t, dead)
	looker.cache.add(routing.Contact{ID: routing.RandomID(rand.New(rand.NewPCG(7, 8))), Addr: deadAddr})
	looker.cache.add(routing.Contact{ID: holder.ID(), Addr: holder.Addr()})
	if st, _ := looker.Stats(ctx); st.Nodes != 0 {
		t.Fatalf("looker's table holds %d nodes before the lookup", st.Nodes)
	}

	peers := make(chan netip.AddrPort, 8)
	st, err := looker.GetPeers(ctx, ih, peers)
	if err != nil {
		t.Fatalf("GetPeers: %v (%+v)", err, st)
	}
	close(peers)
	if got := collect(peers); !got[peer] {
		t.Fatalf("peers %v, want %v", got, peer)
	}
	if st.Queries != 2 {
		t.Fatalf("%d queries, want 2 (the two cached nodes)", st.Queries)
	}
	es, err := looker.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Addr == deadAddr {
			t.Fatal("the node that never answered is in the routing table")
		}
	}
	if looker.cache.lru.Contains(deadAddr) {
		t.Fatal("the node that timed out is still cached")
	}

	// With the cache off the same node has nobody to ask.
	off := startOurs(t, 112, 1, nil, func(c *Config) { c.NodeCacheSize = -1 })[0]
	off.cache.add(routing.Contact{ID: holder.ID(), Addr: holder.Addr()})
	if _, err := off.GetPeers(ctx, ih, nil); err == nil {
		t.Fatal("a node without cache or table found someone to ask")
	}
}

func addrOf(t *testing.T, pc net.PacketConn) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// A query that outlives the soft timeout gives its slot to the next
// candidate: with one query in flight at a time, a dead node nearest the
// target does not hold the lookup up for the hard timeout before the live
// one is asked.
func TestLookupSoftTimeoutWidens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(9, 10))
	ih := routing.RandomID(r)
	holder := startOurs(t, 113, 1, nil, nil)[0]
	peer := netip.MustParseAddrPort("10.1.2.3:4567")
	holder.store.add(ih, peer, time.Now())

	// The lookup ends when the dead nodes' queries time out, so hard is
	// most of the test's time; the peer comes after about minSoftTimeout.
	const hard = 1500 * time.Millisecond
	looker := startOurs(t, 116, 1, nil, func(c *Config) {
		c.Alpha = 1
		c.QueryTimeout = hard
	})[0]
	for range 10 {
		looker.rtt.observe(time.Millisecond) // soft timeout: minSoftTimeout
	}
	// Dead nodes with IDs at the target fill the lookup's first slots
	// (burstAlpha of them, before any answer): they are asked first.
	for i := range burstAlpha {
		dead := listenLoopback(t, 113, 3+i)
		defer dead.Close()
		id := ih
		id[19] ^= byte(i)
		looker.cache.add(routing.Contact{ID: id, Addr: addrOf(t, dead)})
	}
	looker.cache.add(routing.Contact{ID: holder.ID(), Addr: holder.Addr()})

	st, err := looker.GetPeers(ctx, ih, nil)
	if err != nil {
		t.Fatalf("GetPeers: %v", err)
	}
	if st.Peers != 1 || st.Slow != burstAlpha {
		t.Fatalf("%+v: want 1 peer and %d slow queries", st, burstAlpha)
	}
	// The peer came from the second query, sent once the first went slow,
	// long before the first could time out.
	if st.FirstPeer >= hard {
		t.Fatalf("first peer after %v: the lookup waited out the hard timeout", st.FirstPeer)
	}
}

// Bootstrap's fill samples the network well beyond what the own-ID lookup
// meets, within its query budget, and only nodes that answered enter the
// routing table.
func TestFillCacheSamplesNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The network's tables are what the fill reads: under load, 1 s
	// queries time out and leave them thin, so give them time, and wait
	// until every node knows a full bucket's worth.
	nodes := startOurs(t, 114, 100, nil, func(c *Config) { c.QueryTimeout = 5 * time.Second })
	bootstrapAll(t, ctx, nodes)
	for _, n := range nodes {
		testutil.WaitFor(t, 20*time.Second, "the network's tables to fill", func() bool {
			st, err := n.Stats(ctx)
			return err == nil && st.Nodes >= routing.K
		})
	}

	cc := &findNodeCounter{PacketConn: listenLoopback(t, 115, 1)}
	f := startOurs(t, 115, 1, nil, func(c *Config) {
		c.Conn.Close()
		c.Conn = cc
		// What is measured is how far the budget reaches, not how fast
		// 100 nodes answer on a loaded machine: a query that times out
		// spends budget on nothing.
		c.QueryTimeout = 5 * time.Second
	})[0]
	f.cache.add(routing.Contact{ID: nodes[0].ID(), Addr: nodes[0].Addr()})
	f.fillCache(ctx)
	sent := uint64(cc.n.Load())
	if sent > fillQueries {
		t.Fatalf("fill sent %d find_node queries, budget %d", sent, fillQueries)
	}
	// Without the fill it would hold the one node it was given and the
	// K that node returns; each of the fill's answers brings K, and in
	// regions apart, most of them new. The fill stops asking a region
	// once the cache has a node there, so it sends 17-24 queries here and
	// caches 63-86 of the 100 nodes: ask for half.
	if got := f.cache.len(); got < len(nodes)/2 {
		t.Fatalf("fill left %d of %d nodes in the cache (%d queries)", got, len(nodes), sent)
	}
	st, err := f.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fill: %d queries, %d nodes cached", sent, f.cache.len())
	if uint64(st.Nodes) > sent {
		t.Fatalf("%d nodes in the routing table, only %d were asked", st.Nodes, sent)
	}
}

// findNodeCounter counts the find_node queries sent through it.
type findNodeCounter struct {
	net.PacketConn
	n atomic.Int64
}

func (c *findNodeCounter) WriteTo(p []byte, addr net.Addr) (int, error) {
	if bytes.Contains(p, []byte("1:q9:find_node")) {
		c.n.Add(1)
	}
	return c.PacketConn.WriteTo(p, addr)
}

// A lookup on a cold node, before any Bootstrap, starts from the bootstrap
// routers even when they are given by name: the name is resolved for it.
func TestColdLookupResolvesBootstrapNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	holder, err := New(Config{Conn: pc})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	ih := routing.RandomID(rand.New(rand.NewPCG(11, 12)))
	peer := netip.MustParseAddrPort("10.1.2.3:4567")
	holder.store.add(ih, peer, time.Now())

	looker := startOurs(t, 117, 1, []string{"localhost:" + strconv.Itoa(int(holder.Addr().Port()))}, nil)[0]
	got := make(chan netip.AddrPort, 4)
	st, err := looker.GetPeers(ctx, ih, got)
	if err != nil {
		t.Fatalf("GetPeers: %v", err)
	}
	if st.Peers != 1 || <-got != peer {
		t.Fatalf("%+v: want the one peer %v", st, peer)
	}
}
