package routing

import (
	"slices"
	"time"
)

// Closest returns up to k contacts closest to target by XOR distance,
// nearest first, skipping Bad nodes.
//
// It visits buckets in distance order instead of sorting the whole table.
// Let c be the prefix length target shares with self. Bucket c (or the last
// bucket, if c reaches it) agrees with target on its first c+1 bits, so it
// is nearest; the deeper buckets all first differ from target at bit c, so
// they come next, as one group; then each shallower bucket i < c, whose
// members first differ from target at bit i, in decreasing i. Groups are
// sorted individually and the walk stops once k contacts are found.
func (t *Table) Closest(target ID, k int, now time.Time) []Contact {
	if k <= 0 || t.Len() == 0 {
		return nil
	}
	out := make([]Contact, 0, min(k, t.Len()))
	cmp := func(a, b Contact) int {
		for i := range target {
			da, db := a.ID[i]^target[i], b.ID[i]^target[i]
			if da != db {
				if da < db {
					return -1
				}
				return 1
			}
		}
		return 0
	}
	// group appends the usable members of buckets[lo:hi] and sorts them
	// among themselves.
	group := func(lo, hi int) {
		from := len(out)
		for i := lo; i < hi; i++ {
			for _, e := range t.buckets[i].entries {
				if e.State(now, t.maxFailures) != Bad {
					out = append(out, e.Contact)
				}
			}
		}
		slices.SortFunc(out[from:], cmp)
	}
	first := t.bucketIndex(target)
	group(first, first+1)
	if len(out) < k {
		group(first+1, len(t.buckets))
	}
	for i := first - 1; i >= 0 && len(out) < k; i-- {
		group(i, i+1)
	}
	if len(out) > k {
		clear(out[k:])
		out = out[:k]
	}
	return out
}
