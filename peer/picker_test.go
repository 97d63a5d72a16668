package peer

import (
	mrand "math/rand/v2"
	"slices"
	"testing"

	"node/peer/wire"
)

func bitsOf(n int, set ...int) wire.Bits {
	b := wire.NewBits(n)
	for _, i := range set {
		b.Set(i)
	}
	return b
}

// The picker's documented invariants, case by case: what it may start and,
// among those, which it prefers.
func TestPickerInvariants(t *testing.T) {
	if randomFirst != 4 {
		t.Fatalf("the cases below have 3 or 4 pieces to be before or after randomFirst (%d)", randomFirst)
	}
	for _, c := range []struct {
		name       string
		n          int
		have       []int // pieces we have
		inProgress []int
		peers      [][]int // the other connected peers' pieces, for availability
		peerHas    []int   // the peer we pick for
		want       []int   // the pieces pick may return, each of them sometimes; none: no pick
	}{
		{name: "peer has nothing", n: 8, peerHas: nil},
		{name: "peer has only what we have", n: 8, have: []int{1, 2}, peerHas: []int{1, 2}},
		{name: "peer has only what is in progress", n: 8, inProgress: []int{3, 5}, peerHas: []int{3, 5}},
		{name: "skips ours and in progress", n: 8, have: []int{0}, inProgress: []int{1},
			peerHas: []int{0, 1, 2, 3}, want: []int{2, 3}},
		// Under randomFirst complete pieces, rarity does not matter: piece
		// 6, which everyone has, is as likely as the rare 7.
		{name: "random first ignores rarity", n: 8, have: []int{0, 1, 2},
			peers:   [][]int{{6}, {6}, {6}, {6, 7}},
			peerHas: []int{6, 7}, want: []int{6, 7}},
		{name: "rarest first once randomFirst are done", n: 8, have: []int{0, 1, 2, 3},
			peers:   [][]int{{4, 5, 6}, {4, 5}, {4, 7}},
			peerHas: []int{4, 5, 6, 7}, want: []int{6, 7}},
		{name: "rarest not in progress", n: 8, have: []int{0, 1, 2, 3}, inProgress: []int{7},
			peers:   [][]int{{4, 5, 6}, {4, 5}, {4, 7}},
			peerHas: []int{4, 5, 6, 7}, want: []int{6}},
		{name: "rarest the peer has", n: 8, have: []int{0, 1, 2, 3},
			peers:   [][]int{{4, 5, 6}, {4, 5}, {4, 7}},
			peerHas: []int{4, 5}, want: []int{5}},
		{name: "every piece ties", n: 6, have: []int{0, 1, 2, 3},
			peerHas: []int{4, 5}, want: []int{4, 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pk := newPicker(c.n)
			for _, i := range c.have {
				pk.have.Set(i)
				pk.numHave++
			}
			for _, i := range c.inProgress {
				pk.inProgress[i] = &pieceState{}
			}
			for _, p := range c.peers {
				pk.addAvailability(bitsOf(c.n, p...))
			}
			peerHas := bitsOf(c.n, c.peerHas...)
			pk.addAvailability(peerHas)
			if got, want := pk.wantsFrom(peerHas), lacks(c.have, c.peerHas); got != want {
				t.Errorf("wantsFrom = %v, want %v", got, want)
			}
			rng := mrand.New(mrand.NewPCG(1, 2))
			seen := make(map[int]int)
			const draws = 400
			for range draws {
				p, ok := pk.pick(peerHas, rng)
				if ok != (p >= 0) {
					t.Fatalf("pick = %d, %v", p, ok)
				}
				if !ok {
					if len(c.want) > 0 {
						t.Fatalf("no pick, want one of %v", c.want)
					}
					return
				}
				if !slices.Contains(c.want, p) {
					t.Fatalf("picked %d, want one of %v", p, c.want)
				}
				seen[p]++
			}
			// Ties are broken at random: each gets at least half its share
			// (the draws are seeded, so this cannot flake).
			for _, w := range c.want {
				if seen[w] < draws/len(c.want)/2 {
					t.Errorf("piece %d picked %d times in %d, of %d ties", w, seen[w], draws, len(c.want))
				}
			}
		})
	}
}

// lacks reports whether peerHas names a piece not in have: wantsFrom
// counts pieces in progress too, since the peer could help finish them.
func lacks(have, peerHas []int) bool {
	for _, i := range peerHas {
		if !slices.Contains(have, i) {
			return true
		}
	}
	return false
}

// avail counts the connected peers that have each piece, and a peer that
// leaves (or never sent a bitfield) cannot take a count below zero.
func TestPickerAvailability(t *testing.T) {
	pk := newPicker(4)
	a, b := bitsOf(4, 0, 1), bitsOf(4, 1, 2)
	if got := pk.addAvailability(a); got != 2 {
		t.Errorf("addAvailability counted %d pieces, want 2", got)
	}
	pk.addAvailability(b)
	if want := []int{1, 2, 1, 0}; !slices.Equal(pk.avail, want) {
		t.Fatalf("avail = %v, want %v", pk.avail, want)
	}
	pk.removeAvailability(a)
	if want := []int{0, 1, 1, 0}; !slices.Equal(pk.avail, want) {
		t.Fatalf("after a left: avail = %v, want %v", pk.avail, want)
	}
	pk.removeAvailability(bitsOf(4, 0, 3))
	if want := []int{0, 1, 1, 0}; !slices.Equal(pk.avail, want) {
		t.Fatalf("after removing pieces nobody counted: avail = %v, want %v", pk.avail, want)
	}
	if pk.wantsFrom(nil) {
		t.Error("wantsFrom(nil): a peer with no bitfield has nothing we want")
	}
}
