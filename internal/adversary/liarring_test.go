package adversary

import (
	"net/netip"
	"testing"

	"node/krpc"
	"node/routing"
)

// A ring member answers a querier under the ID the ring named it with to
// that querier, and anyone else under its own ID; answers name only
// members, near the target.
func TestLiarRing(t *testing.T) {
	a, b := netip.MustParseAddrPort("10.9.0.1:6881"), netip.MustParseAddrPort("10.9.0.2:6881")
	ownA, ownB := routing.ID{0xa}, routing.ID{0xb}
	g := NewLiarRing(map[netip.AddrPort]routing.ID{a: ownA, b: ownB}, 3, 1)
	q1, q2 := netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1")
	target := routing.ID{1, 2, 3}
	gp := func() *krpc.Msg {
		return &krpc.Msg{Y: krpc.KindQuery, Q: krpc.MethodGetPeers, A: &krpc.Args{ID: routing.ID{9}, InfoHash: &target}}
	}
	r := g.Reply(a)(gp(), q1)
	if r.R.ID != ownA || len(r.R.Nodes) == 0 || len(r.R.Values) != 3 || r.R.Token == "" {
		t.Fatalf("first answer %+v", r.R)
	}
	var named routing.ID
	for _, c := range r.R.Nodes {
		if c.Addr != b || sharedBits(c.ID, target) < 150 {
			t.Fatalf("named %v", c)
		}
		named = c.ID
	}
	if got := g.Reply(b)(gp(), q1).R.ID; got != named {
		t.Fatalf("b answered q1 as %v, named %v", got, named)
	}
	if got := g.Reply(b)(gp(), q2).R.ID; got != ownB {
		t.Fatalf("b answered q2 as %v, want its own %v", got, ownB)
	}
}

// The ring remembers at most maxRingMemory IDs.
func TestLiarRingMemoryBound(t *testing.T) {
	g := NewLiarRing(nil, 0, 1)
	for i := range maxRingMemory + 100 {
		k := ringKey{netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(i>>24)+1), netip.AddrPort{}}
		g.remember(k, routing.ID{})
	}
	if len(g.named) != maxRingMemory || len(g.order) != maxRingMemory {
		t.Fatalf("remembers %d (%d in order), bound %d", len(g.named), len(g.order), maxRingMemory)
	}
}

// A compliant ring names its members under IDs BEP 42 makes valid for
// their addresses, the nearest to the target each address allows, and a
// member asked by that querier answers under that ID.
func TestCompliantLiarRing(t *testing.T) {
	members := map[netip.AddrPort]routing.ID{}
	for i := range 64 {
		members[netip.AddrPortFrom(netip.AddrFrom4([4]byte{45, 1, byte(i), 1}), 6881)] = routing.ID{byte(i)}
	}
	g := NewCompliantLiarRing(members, 0, 1)
	// A fixed member, not the map's random pick: which member is left out
	// of the K nearest decides how near the K-th is.
	self := netip.AddrPortFrom(netip.AddrFrom4([4]byte{45, 1, 0, 1}), 6881)
	target := routing.ID{0x5a, 0x5a, 0x5a}
	q := netip.MustParseAddrPort("10.0.0.1:1")
	r := g.Reply(self)(&krpc.Msg{Y: krpc.KindQuery, Q: krpc.MethodFindNode, A: &krpc.Args{ID: routing.ID{9}, Target: &target}}, q)
	if len(r.R.Nodes) != routing.K {
		t.Fatalf("named %d nodes, want %d", len(r.R.Nodes), routing.K)
	}
	for _, c := range r.R.Nodes {
		if c.Addr == self || !routing.IDMatchesIP(c.ID, c.Addr.Addr()) {
			t.Fatalf("named %v: self, or not valid for its address", c)
		}
		if sharedBits(c.ID, target) < 6 {
			t.Errorf("named %v, only %d bits of the target", c, sharedBits(c.ID, target))
		}
		if got := g.Reply(c.Addr)(&krpc.Msg{Y: krpc.KindQuery, Q: krpc.MethodPing, A: &krpc.Args{ID: routing.ID{9}}}, q).R.ID; got != c.ID {
			t.Errorf("%v answered as %v, named %v", c.Addr, got, c.ID)
		}
	}
}

// The compliant ring keeps the rankings of at most compliantMemory targets.
func TestCompliantLiarRingMemoryBound(t *testing.T) {
	members := map[netip.AddrPort]routing.ID{netip.MustParseAddrPort("45.0.0.1:1"): {1}, netip.MustParseAddrPort("45.0.1.1:1"): {2}}
	g := NewCompliantLiarRing(members, 0, 1)
	for i := range compliantMemory + 10 {
		g.nearestValid(routing.ID{byte(i >> 8), byte(i)}, netip.AddrPort{})
		if len(g.compliant) > compliantMemory {
			t.Fatalf("%d targets kept, bound %d", len(g.compliant), compliantMemory)
		}
	}
}
