package dht

import (
	"net/netip"
	"slices"
	"testing"

	"node/krpc"
	"node/routing"
)

// newRankLookup is a lookup of target by a node on a memNet at a public
// address, for tests of how candidates are admitted and ranked; nothing is
// sent.
func newRankLookup(t *testing.T, target routing.ID, insecure bool) *lookup {
	t.Helper()
	n, err := New(Config{Conn: newMemNet().listen(t, "198.51.100.7"), InsecureIDs: insecure})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &lookup{
		n: n, target: target, method: krpc.MethodGetPeers,
		seen: make(map[netip.AddrPort]bool), found: make(map[netip.AddrPort]bool),
	}
}

// public is the address of host h in the /24 number s, none of them exempt
// from BEP 42.
func public(s, h int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{45, byte(s >> 8), byte(s), byte(h)}), 6881)
}

// window is what the lookup would ask now: next's candidates, each set in
// flight as it is given; the lookup is left as it was.
func window(l *lookup) []*candidate {
	var out []*candidate
	for {
		c, _ := l.next()
		if c == nil {
			break
		}
		c.state = inFlight
		out = append(out, c)
	}
	for _, c := range out {
		c.state = fresh
	}
	return out
}

// Once K candidates with IDs BEP 42 makes valid for their addresses are
// known, the K closest places that end a lookup, and that an announce
// goes to, are theirs, whatever nearer others claim; of those others the
// lookup asks the maxUnvouched nearest, after the vouched. Until then
// distance alone decides, so a lookup among nodes that mostly do not
// comply runs as before.
func TestLookupPrefersBEP42IDs(t *testing.T) {
	r := testRand()
	target := routing.RandomID(r)
	l := newRankLookup(t, target, false)
	namer := public(999, 1)
	// Liars' IDs next to the target, each on an address of its own.
	var liars []routing.Contact
	for i := range routing.K {
		id := target
		id[19] ^= byte(i + 1)
		liars = append(liars, routing.Contact{ID: id, Addr: public(100+i, 1)})
	}
	for _, c := range liars {
		l.add(c, true, namer)
	}
	var honest []routing.Contact
	for i := range routing.K {
		a := public(200+i, 1)
		honest = append(honest, routing.Contact{ID: routing.SecureID(a.Addr(), byte(r.Uint32()), r), Addr: a})
	}
	for _, c := range honest[:routing.K-1] {
		l.add(c, true, namer)
	}
	count := func(cs []*candidate) (vouched, not int) {
		for _, c := range cs {
			if c.vouched {
				vouched++
			} else {
				not++
			}
		}
		return
	}
	if v, n := count(window(l)); v != 0 || n != routing.K {
		t.Fatalf("with %d vouched candidates known, the lookup asks %d vouched and %d others, want the %d nearest", routing.K-1, v, n, routing.K)
	}
	l.add(honest[routing.K-1], true, namer)
	if v, n := count(window(l)); v != routing.K || n != maxUnvouched {
		t.Fatalf("with K vouched known, the lookup asks %d vouched and %d others, want %d and %d", v, n, routing.K, maxUnvouched)
	}
	// It asks the vouched first, and of the unvouched the nearest ones.
	w := window(l)
	for i, c := range w {
		if c.vouched != (i < routing.K) {
			t.Fatalf("#%d asked is %v, vouched %v: the vouched are not asked first", i, c.Contact, c.vouched)
		}
	}
	for _, c := range w {
		if !c.vouched && !slices.Contains(liars[:maxUnvouched], c.Contact) {
			t.Errorf("asks %v, not among the %d nearest unvouched", c.Contact, maxUnvouched)
		}
	}
	// Once maxUnvouchedQueries were sent, unvouched ones not yet asked
	// take no place.
	l.unvouchedAsked = maxUnvouchedQueries
	if v, n := count(window(l)); v != routing.K || n != 0 {
		t.Fatalf("with the unvouched budget spent, the lookup asks %d vouched and %d others, want %d and 0", v, n, routing.K)
	}
	for _, c := range l.cands {
		c.state = answered
	}
	if v, n := count(l.closestAnswered(routing.K)); v != routing.K || n != 0 {
		t.Fatalf("results: %d vouched and %d others, want %d and 0", v, n, routing.K)
	}

	// InsecureIDs: every ID is taken at its word, as before.
	li := newRankLookup(t, target, true)
	for _, c := range append(liars, honest...) {
		li.add(c, true, namer)
	}
	for _, c := range window(li) {
		if !slices.Contains(liars, c.Contact) {
			t.Fatalf("InsecureIDs: asks %v, want the nearer liars alone", c.Contact)
		}
	}
}

// Exempt addresses are vouched for by the nodes we start from and by
// exempt namers, never by a public node naming a private address.
func TestLookupVouchesExemptOnlyFromExempt(t *testing.T) {
	l := newRankLookup(t, routing.ID{1}, false)
	priv := netip.MustParseAddrPort("10.1.2.3:6881")
	for _, tc := range []struct {
		from netip.AddrPort
		want bool
	}{
		{netip.AddrPort{}, true},
		{netip.MustParseAddrPort("192.168.1.1:6881"), true},
		{public(1, 1), false},
	} {
		if got := l.vouches(routing.Contact{ID: routing.ID{1}, Addr: priv}, tc.from); got != tc.want {
			t.Errorf("named by %v: vouched %v, want %v", tc.from, got, tc.want)
		}
	}
}

// A lookup takes at most maxLookupPerBlock candidates from one /24, and
// any number from exempt ranges.
func TestLookupPerBlockBound(t *testing.T) {
	r := testRand()
	l := newRankLookup(t, routing.RandomID(r), false)
	for h := range 3 * maxLookupPerBlock {
		l.add(routing.Contact{ID: routing.RandomID(r), Addr: public(7, h+1)}, true, netip.AddrPort{})
		l.add(routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 7, 7, byte(h + 1)}), 6881)}, true, netip.AddrPort{})
	}
	inBlock, exempt := 0, 0
	for _, c := range l.cands {
		if c.Addr.Addr().As4()[0] == 10 {
			exempt++
		} else {
			inBlock++
		}
	}
	if inBlock != maxLookupPerBlock || exempt != 3*maxLookupPerBlock {
		t.Fatalf("%d candidates from one /24 (bound %d), %d exempt (want %d)", inBlock, maxLookupPerBlock, exempt, 3*maxLookupPerBlock)
	}
}
