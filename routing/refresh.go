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
	return t.randomIDAt(i, i < len(t.buckets)-1, r)
}

// randomIDAt returns a uniformly random ID sharing self's first d bits
// and, if flip, exactly those: one at depth d.
func (t *Table) randomIDAt(d int, flip bool, r *rand.Rand) ID {
	id := RandomID(r)
	full, rem := d/8, d%8
	copy(id[:full], t.self[:full])
	if rem > 0 {
		mask := byte(0xff) << (8 - rem)
		id[full] = t.self[full]&mask | id[full]&^mask
	}
	if flip {
		bit := byte(0x80) >> rem
		id[full] = id[full]&^bit | (t.self[full]^bit)&bit
	}
	return id
}

// Sparse returns one random target ID inside the range of each bucket that
// holds fewer than K nodes. A node that has just joined looks these up:
// its own-ID lookup fills the buckets near it, but only lookups aimed at
// the far ones fill those (Kademlia's join).
//
// The last bucket also stands for the buckets it would split into: when
// its members all share more than its depth of leading bits with self,
// each depth between is empty, and gets a target of its own. A warm start
// needs this: its own-ID lookup asks the saved nodes nearest self, and
// their K answers fill one unsplit bucket that Sparse would otherwise
// call full, leaving every bucket but the near one to chance.
func (t *Table) Sparse(r *rand.Rand) []ID {
	if r == nil {
		return nil
	}
	var out []ID
	last := len(t.buckets) - 1
	for i := range t.buckets {
		if len(t.buckets[i].entries) < t.k {
			out = append(out, t.randomIDIn(i, r))
		}
	}
	b := &t.buckets[last]
	if len(b.entries) == 0 {
		return out
	}
	shallowest := IDLen * 8
	for _, e := range b.entries {
		shallowest = min(shallowest, CommonPrefixLen(t.self, e.ID))
	}
	for d := last; d < shallowest && d < maxBuckets-1; d++ {
		out = append(out, t.randomIDAt(d, true, r))
	}
	return out
}
