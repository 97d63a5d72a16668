package dht

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// A Node left at the zero Config stores at most DefaultMaxInfoHashes swarms
// of at most DefaultMaxPeersPerInfoHash peers, each for DefaultPeerTTL.
func TestPeerStoreDefaults(t *testing.T) {
	n := startNode(t, 90, 1, nil)
	s := n.store
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	// Every announce from its own source, so that only the store's
	// bounds, not the per-source ones, come into play.
	src := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)
	}
	hash := func(i int) routing.ID {
		var id routing.ID
		id[0], id[18], id[19] = 0xcd, byte(i>>8), byte(i)
		return id
	}

	for i := range DefaultMaxInfoHashes {
		if !s.add(hash(i), src(i), t0) {
			t.Fatalf("swarm %d refused", i)
		}
	}
	if nh, _ := s.counts(); nh != DefaultMaxInfoHashes {
		t.Fatalf("%d swarms after %d announces", nh, DefaultMaxInfoHashes)
	}
	s.add(hash(DefaultMaxInfoHashes), src(DefaultMaxInfoHashes), t0.Add(time.Second))
	if nh, _ := s.counts(); nh != DefaultMaxInfoHashes {
		t.Fatalf("%d swarms, bound is DefaultMaxInfoHashes = %d", nh, DefaultMaxInfoHashes)
	}
	if s.get(hash(0), t0.Add(time.Second), 1) != nil {
		t.Error("the least recently announced swarm was kept past DefaultMaxInfoHashes")
	}

	ih := hash(DefaultMaxInfoHashes)
	base := DefaultMaxInfoHashes + 1
	for i := range DefaultMaxPeersPerInfoHash {
		s.add(ih, src(base+i), t0.Add(time.Second))
	}
	if got := s.get(ih, t0.Add(time.Second), 1<<20); len(got) != DefaultMaxPeersPerInfoHash {
		t.Fatalf("%d peers in a swarm filled to DefaultMaxPeersPerInfoHash", len(got))
	}
	late := src(base + DefaultMaxPeersPerInfoHash)
	s.add(ih, late, t0.Add(2*time.Second))
	got := s.get(ih, t0.Add(2*time.Second), 1<<20)
	if len(got) != DefaultMaxPeersPerInfoHash || got[0] != late {
		t.Fatalf("%d peers (newest %v), bound is DefaultMaxPeersPerInfoHash = %d", len(got), got[0], DefaultMaxPeersPerInfoHash)
	}

	// The newest peer lives exactly DefaultPeerTTL.
	at := t0.Add(2 * time.Second)
	if got := s.get(ih, at.Add(DefaultPeerTTL), 1); len(got) != 1 || got[0] != late {
		t.Errorf("at DefaultPeerTTL: %v, want %v", got, late)
	}
	if got := s.get(ih, at.Add(DefaultPeerTTL+time.Nanosecond), 1); got != nil {
		t.Errorf("past DefaultPeerTTL: %v, want none", got)
	}
}

// A lookup keeps at most maxCandidates candidates however many nodes the
// answers name, the closest ones, and never drops one it has asked.
func TestLookupCandidateBound(t *testing.T) {
	n := startNode(t, 90, 2, nil)
	r := testRand()
	l := &lookup{n: n, target: routing.RandomID(r), seen: make(map[netip.AddrPort]bool)}
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 91, byte(i%250 + 1)}), uint16(2000+i))
	}
	var all []routing.Contact
	for i := range 4 * maxCandidates {
		c := routing.Contact{ID: routing.RandomID(r), Addr: addr(i)}
		all = append(all, c)
		l.add(c, true, netip.AddrPort{})
		if len(l.cands) > maxCandidates {
			t.Fatalf("%d candidates after %d adds, bound is %d", len(l.cands), i+1, maxCandidates)
		}
	}
	if len(l.cands) != maxCandidates {
		t.Fatalf("%d candidates, want maxCandidates = %d", len(l.cands), maxCandidates)
	}
	// They are the closest maxCandidates of all.
	far := l.cands[maxCandidates-1].ID.Distance(l.target)
	closer := 0
	for _, c := range all {
		if c.ID.Distance(l.target).Cmp(far) <= 0 {
			closer++
		}
	}
	if closer != maxCandidates {
		t.Errorf("%d contacts at most as far as the farthest kept, want %d", closer, maxCandidates)
	}

	// Every candidate asked: asked ones stay, so a closer newcomer is the
	// one left out.
	for _, c := range l.cands {
		c.state = inFlight
	}
	var near routing.ID = l.target
	near[19] ^= 1
	l.add(routing.Contact{ID: near, Addr: addr(4 * maxCandidates)}, true, netip.AddrPort{})
	asked := 0
	for _, c := range l.cands {
		if c.state == inFlight {
			asked++
		}
	}
	if asked != maxCandidates || len(l.cands) != maxCandidates {
		t.Errorf("%d candidates, %d of them asked; want %d, all asked", len(l.cands), asked, maxCandidates)
	}
}

// However many unverified nodes query us, at most maxPings-pingReserve
// verification pings are in flight at once (the rest of maxPings is the
// table's own: see TestQueriersLeavePingSlots).
func TestPingBound(t *testing.T) {
	n := startNode(t, 90, 3, func(c *Config) { c.QueryTimeout = time.Minute })
	r := testRand()
	var pinged atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 2 * maxPings {
		// A node that queries us but never answers our ping.
		tr, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 92, 1+i%8), Handler: func(_ netip.AddrPort, q *krpc.Msg) *krpc.Msg {
			if q.Q == krpc.MethodPing || q.Q == krpc.MethodFindNode { // see verify
				pinged.Add(1)
			}
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		if _, err := tr.Query(ctx, n.Addr(), krpc.MethodPing, &krpc.Args{ID: routing.RandomID(r)}); err != nil {
			t.Fatal(err)
		}
	}
	// The loop has taken every queriedEvent once Stats, behind them in its
	// queue, returns.
	if _, err := n.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pinged.Load() < maxPings-pingReserve && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// No answer and a minute's timeout: none of these pings ends, so no
	// further one may start.
	settle := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(settle) && pinged.Load() <= maxPings-pingReserve {
		time.Sleep(5 * time.Millisecond)
	}
	if got := pinged.Load(); got != maxPings-pingReserve {
		t.Fatalf("%d pings from %d unverified queriers, bound is maxPings-pingReserve = %d", got, 2*maxPings, maxPings-pingReserve)
	}
}
