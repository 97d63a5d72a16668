package routing

import (
	"net/netip"
	"time"
)

// maxBuckets is one bucket per bit of the ID: the last can hold only the ID
// differing from ours in the final bit (and our own, never inserted).
const maxBuckets = IDLen * 8

// bucket holds the contacts sharing a prefix length with self (see Table).
// Both slices are tiny (K-sized), so linear scans beat any index here.
type bucket struct {
	entries []Entry
	// repl is the replacement cache, oldest first, so the most recent
	// candidate is at the end and the oldest is dropped from the front.
	repl []Entry
	// changed is when a node was last added to the bucket or answered us;
	// zero means "not since the table got its first node".
	changed time.Time
}

func (b *bucket) find(id ID) int {
	for i := range b.entries {
		if b.entries[i].ID == id {
			return i
		}
	}
	return -1
}

func (b *bucket) removeAt(i int) {
	copy(b.entries[i:], b.entries[i+1:])
	b.entries[len(b.entries)-1] = Entry{}
	b.entries = b.entries[:len(b.entries)-1]
}

// worstBad returns the index of the bad entry that has been silent longest,
// or -1.
func (b *bucket) worstBad(now time.Time, maxFailures int) int {
	w := -1
	for i := range b.entries {
		e := &b.entries[i]
		if e.State(now, maxFailures) != Bad {
			continue
		}
		if w < 0 || e.LastResponse.Before(b.entries[w].LastResponse) {
			w = i
		}
	}
	return w
}

func (b *bucket) hasUntrusted(now time.Time, maxFailures int) bool {
	for i := range b.entries {
		if b.entries[i].State(now, maxFailures) != Good {
			return true
		}
	}
	return false
}

// questionable returns the questionable members, oldest LastResponse first,
// so the caller pings the likeliest-dead node first.
func (b *bucket) questionable(now time.Time, maxFailures int) []Contact {
	var out []Entry
	for _, e := range b.entries {
		if e.State(now, maxFailures) == Questionable {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	// Insertion sort: at most K elements.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].LastResponse.Before(out[j-1].LastResponse); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	cs := make([]Contact, len(out))
	for i := range out {
		cs[i] = out[i].Contact
	}
	return cs
}

// addReplacement records e as the most recent candidate, evicting any older
// record of the same node (by ID or by address) and, when full, the oldest.
func (b *bucket) addReplacement(e Entry, limit int) {
	if limit <= 0 {
		return
	}
	b.dropReplacement(e.ID, e.Addr)
	if len(b.repl) >= limit {
		n := copy(b.repl, b.repl[len(b.repl)-limit+1:])
		clear(b.repl[n:])
		b.repl = b.repl[:n]
	}
	b.repl = append(b.repl, e)
}

// dropReplacement removes candidates with this ID or this address.
func (b *bucket) dropReplacement(id ID, addr netip.AddrPort) {
	n := 0
	for _, r := range b.repl {
		if r.ID != id && r.Addr != addr {
			b.repl[n] = r
			n++
		}
	}
	clear(b.repl[n:])
	b.repl = b.repl[:n]
}

// popReplacement removes and returns the most recent candidate for which ok
// holds. Candidates failing ok are discarded: they went stale while cached
// (their address or ID was since taken by a bucket member).
func (b *bucket) popReplacement(ok func(Entry) bool) (Entry, bool) {
	for len(b.repl) > 0 {
		last := len(b.repl) - 1
		r := b.repl[last]
		b.repl[last] = Entry{}
		b.repl = b.repl[:last]
		if ok(r) {
			return r, true
		}
	}
	return Entry{}, false
}
