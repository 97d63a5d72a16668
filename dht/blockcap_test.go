package dht

import (
	"context"
	"errors"
	"slices"
	"testing"

	"node/routing"
)

// A liar that knows which nodes lie near a target (its own lookup found
// them) names, before they are met, two addresses in each of their /24s.
// Those take no more than a place each: the honest nodes, nearer the
// target, are still candidates, whatever the liar named first.
func TestLookupBlockNeighboursCannotShutOutHonest(t *testing.T) {
	r := testRand()
	target := routing.RandomID(r)
	l := newRankLookup(t, target, false)
	liar, namer := public(999, 1), public(998, 1)
	far := target
	for i := range far {
		far[i] ^= 0xff
	}
	var honest []routing.Contact
	for i := range routing.K {
		a := public(300+i, 10)
		honest = append(honest, routing.Contact{ID: routing.SecureID(a.Addr(), byte(r.Uint32()), r), Addr: a})
		for h := range maxLookupPerBlock {
			l.add(routing.Contact{ID: far, Addr: public(300+i, 20+h)}, true, liar)
		}
	}
	for _, c := range honest {
		l.add(c, true, namer)
	}
	for _, c := range honest {
		if !slices.ContainsFunc(l.cands, func(k *candidate) bool { return k.Contact == c }) {
			t.Errorf("honest %v is no candidate: its /24 neighbours, named first far from the target, hold its block's places", c.Addr)
		}
	}
}

// Neighbours named nearer the target than the honest node, at addresses
// where nobody answers, hold its block's places only until they fail: the
// honest node, named again, is then a candidate.
func TestLookupFailedBlockNeighboursFreeTheirPlaces(t *testing.T) {
	r := testRand()
	target := routing.RandomID(r)
	l := newRankLookup(t, target, false)
	liar, namer := public(999, 1), public(998, 1)
	a := public(300, 10)
	h := routing.Contact{ID: routing.SecureID(a.Addr(), byte(r.Uint32()), r), Addr: a}
	for i := range maxLookupPerBlock {
		id := target
		id[19] ^= byte(i + 1)
		l.add(routing.Contact{ID: id, Addr: public(300, 20+i)}, true, liar)
	}
	l.add(h, true, namer)
	for _, c := range l.cands {
		c.state = failed
	}
	l.add(h, true, namer)
	if !slices.ContainsFunc(l.cands, func(k *candidate) bool { return k.Contact == h && k.state == fresh }) {
		t.Fatalf("honest %v is no candidate once the neighbours named before it failed", h.Addr)
	}
}

// Once a lookup knows K vouched candidates, unvouched ones a liar names
// nearer the target, as many as an answer holds (each pair in a /24 of
// its own), do not push the vouched ones not yet asked out of the
// candidates: the lookup would ask the few unvouched it allows and end
// where the liar met it.
func TestLookupUnvouchedFloodKeepsVouched(t *testing.T) {
	r := testRand()
	target := routing.RandomID(r)
	l := newRankLookup(t, target, false)
	namer, liar := public(998, 1), public(999, 1)
	var vouched []routing.Contact
	for i := range 2 * routing.K {
		a := public(400+i, 1)
		vouched = append(vouched, routing.Contact{ID: routing.SecureID(a.Addr(), byte(r.Uint32()), r), Addr: a})
		l.add(vouched[i], true, namer)
	}
	if !l.capped {
		t.Fatal("not capped with 2K vouched candidates")
	}
	for i := range 2 * maxCandidates {
		id := target
		id[19] ^= byte(i + 1)
		id[18] ^= byte(i >> 8)
		l.add(routing.Contact{ID: id, Addr: public(500+i/maxLookupPerBlock, 1+i%maxLookupPerBlock)}, true, liar)
	}
	kept := 0
	for _, c := range l.cands {
		if c.vouched {
			kept++
		}
	}
	if kept != len(vouched) {
		t.Fatalf("%d of %d vouched candidates left after a liar named %d unvouched ones nearer", kept, len(vouched), 2*maxCandidates)
	}
	// And a vouched one named after the flood still comes in.
	a := public(700, 1)
	late := routing.Contact{ID: routing.SecureID(a.Addr(), byte(r.Uint32()), r), Addr: a}
	l.add(late, true, namer)
	if !slices.ContainsFunc(l.cands, func(k *candidate) bool { return k.Contact == late }) {
		t.Fatal("a vouched candidate named after the flood is no candidate")
	}
}

// Where few nodes comply with BEP 42, a liar names K made-up nodes under
// IDs BEP 42 makes valid for addresses where nobody answers, next to the
// target: once they have all failed, the lookup asks the unvouched as it
// did before it knew them, not the few it allows beside K live vouched
// ones.
func TestLookupDeadVouchedDoNotCap(t *testing.T) {
	r := testRand()
	target := routing.RandomID(r)
	l := newRankLookup(t, target, false)
	namer, liar := public(998, 1), public(999, 1)
	var honest []routing.Contact
	for i := range 3 * routing.K {
		id := target
		id[10] ^= byte(i + 1) // near, not valid for its address
		honest = append(honest, routing.Contact{ID: id, Addr: public(800+i, 1)})
		l.add(honest[i], true, namer)
	}
	for i := range routing.K {
		a := public(900+i, 1)
		id := routing.SecureID(a.Addr(), 0, r)
		// The liar picks addresses whose valid prefix is the target's;
		// the test simply takes the prefix as it comes and makes the rest
		// nearer than the honest nodes.
		copy(id[3:19], target[3:19])
		l.add(routing.Contact{ID: id, Addr: a}, true, liar)
	}
	for _, c := range slices.Clone(l.cands) {
		if c.vouched {
			c.state = inFlight
			if err := l.receive(context.Background(), queryResult{c: c, err: errors.New("no answer")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(window(l)); n < routing.K {
		t.Fatalf("with every vouched candidate failed, the lookup asks %d of %d unvouched, want K = %d", n, len(honest), routing.K)
	}
}

// Nor can the liar push honest nodes out of their block's places by
// naming neighbours under made-up IDs nearer the target: those are not
// valid for their addresses, and do not displace ones that are.
func TestLookupUnvouchedNeighboursDoNotDisplaceVouched(t *testing.T) {
	r := testRand()
	target := routing.RandomID(r)
	l := newRankLookup(t, target, false)
	namer, liar := public(998, 1), public(999, 1)
	var honest []routing.Contact
	for h := range maxLookupPerBlock {
		a := public(300, 10+h)
		honest = append(honest, routing.Contact{ID: routing.SecureID(a.Addr(), byte(r.Uint32()), r), Addr: a})
		l.add(honest[h], true, namer)
	}
	for h := range maxLookupPerBlock {
		id := target
		id[19] ^= byte(h + 1)
		l.add(routing.Contact{ID: id, Addr: public(300, 20+h)}, true, liar)
	}
	for _, c := range honest {
		if !slices.ContainsFunc(l.cands, func(k *candidate) bool { return k.Contact == c }) {
			t.Errorf("honest %v pushed out by unvouched neighbours named nearer", c.Addr)
		}
	}
}

// Where few nodes comply, the K closest vouched nodes lie beyond the K
// closest of all, where a client that does not rank by BEP 42 looks for
// peers: an announce goes also to the nearest unvouched nodes the lookup
// asked (maxUnvouched), not to the vouched alone.
func TestAnnounceReachesNearestUnvouched(t *testing.T) {
	r := testRand()
	target := routing.RandomID(r)
	l := newRankLookup(t, target, false)
	namer := public(998, 1)
	for i := range routing.K {
		a := public(400+i, 1)
		l.add(routing.Contact{ID: routing.SecureID(a.Addr(), byte(r.Uint32()), r), Addr: a}, true, namer)
	}
	var near []routing.Contact
	for i := range 2 * routing.K {
		id := target
		id[19] ^= byte(i + 1)
		near = append(near, routing.Contact{ID: id, Addr: public(600+i, 1)})
		l.add(near[i], true, namer)
	}
	for _, c := range l.cands {
		c.state, c.token = answered, "t"
	}
	got := l.announceTo()
	vouched, unvouched := 0, 0
	for _, c := range got {
		if c.vouched {
			vouched++
		} else if slices.Contains(near[:maxUnvouched], c.Contact) {
			unvouched++
		} else {
			t.Errorf("announces to %v, not among the %d nearest unvouched", c.Addr, maxUnvouched)
		}
	}
	if vouched != routing.K || unvouched != maxUnvouched {
		t.Fatalf("announces to %d vouched and %d of the nearest unvouched, want %d and %d", vouched, unvouched, routing.K, maxUnvouched)
	}
}
