package peer

import (
	mrand "math/rand/v2"

	"node/peer/wire"
)

// randomFirst is how many pieces are picked at random before rarest-first
// takes over: a new peer needs something to trade quickly, and the rarest
// pieces are the slowest to get.
const randomFirst = 4

// picker chooses which piece to start next. Its invariants:
//   - a piece is started only if the peer has it, we do not, and it is not
//     already in progress;
//   - until randomFirst pieces are complete the choice is uniform at random
//     among those; after that it is the rarest (fewest peers have it), ties
//     broken at random, so the swarm keeps every piece alive;
//   - avail[i] is the number of connected peers that have piece i, kept up
//     to date by add/removeAvailability.
type picker struct {
	n          int
	have       wire.Bits
	numHave    int
	avail      []int
	inProgress map[int]*pieceState
}

func newPicker(n int) *picker {
	return &picker{n: n, have: wire.NewBits(n), avail: make([]int, n), inProgress: make(map[int]*pieceState)}
}

func (pk *picker) addAvailability(b wire.Bits) (count int) {
	for i := 0; i < pk.n; i++ {
		if b.Has(i) {
			pk.avail[i]++
			count++
		}
	}
	return count
}

func (pk *picker) removeAvailability(b wire.Bits) {
	for i := 0; i < pk.n; i++ {
		if b.Has(i) && pk.avail[i] > 0 {
			pk.avail[i]--
		}
	}
}

// wantsFrom reports whether a peer with these pieces has one we lack.
func (pk *picker) wantsFrom(b wire.Bits) bool {
	if b == nil {
		return false
	}
	for i := 0; i < pk.n; i++ {
		if b.Has(i) && !pk.have.Has(i) {
			return true
		}
	}
	return false
}

// pick returns a piece to start for a peer that has peerHas.
func (pk *picker) pick(peerHas wire.Bits, rng *mrand.Rand) (int, bool) {
	best, bestAvail, ties := -1, 0, 0
	random := pk.numHave < randomFirst
	for i := 0; i < pk.n; i++ {
		if !peerHas.Has(i) || pk.have.Has(i) || pk.inProgress[i] != nil {
			continue
		}
		a := pk.avail[i]
		if random {
			a = 0
		}
		switch {
		case best < 0 || a < bestAvail:
			best, bestAvail, ties = i, a, 1
		case a == bestAvail:
			// Reservoir sampling: each tied piece ends up chosen with equal odds.
			ties++
			if rng.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best, best >= 0
}
