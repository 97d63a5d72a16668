package routing

import (
	"math/rand/v2"
	"time"
)

// Refresh returns one random target ID inside the range of each bucket that
// has not changed (no node added, no node responded) for RefreshAfter, and
// marks those buckets as refreshed at now so they are not returned again
// until RefreshAfter has passed once more.
//
// Buckets count as changed when the table received its first node, so an
// empty table asks for nothing (the caller is expected to bootstrap) and a
// fresh one asks only once RefreshAfter has passed since bootstrap began.
func (t *Table) Refresh(now time.Time, r *rand.Rand) []ID {
	if t.start.IsZero() || r == nil {
		return nil
	}
	var out []ID
	for i := range t.buckets {
		b := &t.buckets[i]
		changed := b.changed
		if changed.IsZero() {
			changed = t.start
		}
		if now.Sub(changed) < RefreshAfter {
			continue
		}
		out = append(out, t.randomIDIn(i, r))
		b.changed = now
	}
	return out
}

// randomIDIn returns a uniformly random ID that falls in bucket i: it
// copies self's first i bits and, unless i is the last bucket (which covers
// every longer shared prefix too), flips bit i.
func (t *Table) randomIDIn(i int, r *rand.Rand) ID {
	id := RandomID(r)
	full, rem := i/8, i%8
	copy(id[:full], t.self[:full])
	if rem > 0 {
		mask := byte(0xff) << (8 - rem)
		id[full] = t.self[full]&mask | id[full]&^mask
	}
	if i < len(t.buckets)-1 {
		bit := byte(0x80) >> rem
		id[full] = id[full]&^bit | (t.self[full]^bit)&bit
	}
	return id
}

// Sparse returns one random target ID inside the range of each bucket that
// holds fewer than K nodes. A node that has just joined looks these up:
// its own-ID lookup fills the buckets near it, but only lookups aimed at
// the far ones fill those (Kademlia's join).
func (t *Table) Sparse(r *rand.Rand) []ID {
	if r == nil {
		return nil
	}
	var out []ID
	for i := range t.buckets {
		if len(t.buckets[i].entries) < t.k {
			out = append(out, t.randomIDIn(i, r))
		}
	}
	return out
}
