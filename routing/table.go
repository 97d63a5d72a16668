package routing

import (
	"net/netip"
	"time"
)

// Config tunes a Table. The zero Config gives BEP 5 behaviour.
type Config struct {
	K                int // bucket size; 0 means K
	ReplacementCache int // replacement candidates kept per bucket; 0 means K, negative means none
	MaxFailures      int // consecutive failed queries after which a node is Bad; 0 means 2

	// RequireSecureIDs refuses contacts whose ID does not match their IP
	// (IDMatchesIP), unless BEP42Exempt(IP): otherwise anyone can choose
	// IDs next to a target and take over its neighbourhood.
	RequireSecureIDs bool
	// MaxPerSubnet caps the members one /24 (IPv4) or /64 (IPv6) may have
	// in any one bucket; 0 means no cap. BEP 42 still gives a /24 2048 ID
	// prefixes, enough to fill the far buckets, so a node on a public
	// address should set it (to 1). Exempt addresses are never capped,
	// which keeps local and test networks working.
	MaxPerSubnet int
}

// Table is the routing table of the node whose ID is Self.
//
// Bucket i, for every i but the last, holds the IDs sharing exactly i
// leading bits with self; the last bucket holds all IDs sharing at least
// that many. Only the last bucket splits, so resolution is fine near self
// and coarse far away, and the table stays at most 160 buckets deep.
//
// A Table is not safe for concurrent use.
type Table struct {
	self        ID
	k           int
	replN       int
	maxFailures int
	// See Config.RequireSecureIDs and Config.MaxPerSubnet.
	requireSecure bool
	maxPerSubnet  int
	buckets       []bucket
	// byAddr indexes bucket members (not replacements) by address, so that
	// Failed, which only knows an address, is O(1) and so that one address
	// never holds two entries.
	byAddr map[netip.AddrPort]ID
	// start is when the first node was inserted: buckets that never changed
	// count as changed then, so Refresh leaves the caller time to bootstrap.
	start time.Time
}

// New returns an empty table for self. The zero Config is valid.
func New(self ID, cfg Config) *Table {
	t := &Table{
		self:          self,
		k:             cfg.K,
		replN:         cfg.ReplacementCache,
		maxFailures:   cfg.MaxFailures,
		requireSecure: cfg.RequireSecureIDs,
		maxPerSubnet:  cfg.MaxPerSubnet,
		buckets:       make([]bucket, 1, 8),
		byAddr:        make(map[netip.AddrPort]ID),
	}
	if t.k <= 0 {
		t.k = K
	}
	switch {
	case t.replN == 0:
		t.replN = t.k
	case t.replN < 0:
		t.replN = 0
	}
	if t.maxFailures <= 0 {
		t.maxFailures = defaultMaxFailures
	}
	return t
}

// Self is the ID the table is organised around.
func (t *Table) Self() ID { return t.self }

// Len is the number of contacts in buckets (not replacements).
func (t *Table) Len() int { return len(t.byAddr) }

// NumBuckets is the current number of buckets (1 to 160).
func (t *Table) NumBuckets() int { return len(t.buckets) }

func (t *Table) bucketIndex(id ID) int {
	return min(CommonPrefixLen(t.self, id), len(t.buckets)-1)
}

// lookup finds the bucket member with this ID.
func (t *Table) lookup(id ID) (b *bucket, i int) {
	b = &t.buckets[t.bucketIndex(id)]
	return b, b.find(id)
}

// acceptable rejects contacts that can never be stored: our own ID (we are
// not our own neighbour), the zero ID (the wire's "absent"), unusable
// addresses and, if required, IDs that BEP 42 says do not belong to their
// address.
func (t *Table) acceptable(c Contact) bool {
	if c.ID == t.self || c.ID.IsZero() || !c.Addr.IsValid() || c.Addr.Port() == 0 {
		return false
	}
	ip := c.Addr.Addr()
	return !t.requireSecure || BEP42Exempt(ip) || IDMatchesIP(c.ID, ip)
}

// Responded records that c answered one of our queries at now. Unknown nodes
// are inserted only here (or by promotion from a replacement cache), so a
// node is in a bucket only once it has proved it answers. A contact the
// table refuses (its own ID, an ID held at another address and, per Config,
// a BEP 42 mismatch or a subnet over its share) returns nil and is not
// stored.
//
// If c belongs to a full bucket that cannot split and holds no bad node, c is
// kept in the bucket's replacement cache and the bucket's questionable
// members are returned, oldest first: the caller pings them and reports
// back with Responded or Failed; one that goes bad is replaced by the most
// recent candidate. Callers should not ping a node that already has a ping
// in flight, since every newcomer to that bucket returns the same list.
func (t *Table) Responded(c Contact, now time.Time) (ping []Contact) {
	if !t.acceptable(c) {
		return nil
	}
	if b, i := t.lookup(c.ID); i >= 0 {
		e := &b.entries[i]
		if e.Addr != c.Addr {
			// Someone else claims a held ID; the holder keeps it, or
			// anyone could hijack an entry by spoofing a reply.
			return nil
		}
		e.LastResponse = now
		e.Failures = 0
		b.changed = now
		return nil
	}
	if old, ok := t.byAddr[c.Addr]; ok {
		// The node at this address restarted with a new ID: the old entry
		// describes a node that is gone.
		t.remove(old, false)
	}
	return t.insert(Entry{Contact: c, LastResponse: now}, now)
}

func (t *Table) insert(e Entry, now time.Time) []Contact {
	if t.start.IsZero() {
		t.start = now
	}
	subnet, capped := t.subnet(e.Addr.Addr())
	for {
		bi := t.bucketIndex(e.ID)
		b := &t.buckets[bi]
		full := len(b.entries) >= t.k
		if full && bi == len(t.buckets)-1 && len(t.buckets) < maxBuckets {
			t.split()
			continue
		}
		var w int
		switch {
		case capped && b.countIn(subnet, -1) >= t.maxPerSubnet:
			// The subnet has its share: e may only take the place of a bad
			// node of its own subnet. It is not cached either, since
			// promoting it later would exceed the share.
			if w = b.worstBadIn(subnet, now, t.maxFailures); w < 0 {
				return nil
			}
		case !full:
			if b.entries == nil {
				b.entries = make([]Entry, 0, t.k)
			}
			b.dropReplacement(e.ID, e.Addr)
			b.entries = append(b.entries, e)
			t.byAddr[e.Addr] = e.ID
			b.changed = now
			return nil
		default:
			if w = b.worstBad(now, t.maxFailures); w < 0 {
				b.addReplacement(e, t.replN)
				return b.questionable(now, t.maxFailures)
			}
		}
		delete(t.byAddr, b.entries[w].Addr)
		b.dropReplacement(e.ID, e.Addr)
		b.entries[w] = e
		t.byAddr[e.Addr] = e.ID
		b.changed = now
		return nil
	}
}

// split divides the last bucket into the IDs sharing exactly its prefix
// length with self and those sharing more. Both halves inherit its changed
// time: splitting is not news about the nodes.
func (t *Table) split() {
	last := len(t.buckets) - 1
	t.buckets = append(t.buckets, bucket{changed: t.buckets[last].changed})
	old, nb := &t.buckets[last], &t.buckets[last+1]
	nb.entries = make([]Entry, 0, t.k)
	deeper := func(e Entry) bool { return CommonPrefixLen(t.self, e.ID) > last }
	old.entries, nb.entries = partition(old.entries, nb.entries, deeper)
	old.repl, nb.repl = partition(old.repl, nb.repl, deeper)
}

// partition moves the entries of src for which out holds to the end of
// dst, keeping the rest in src's order and storage.
func partition(src, dst []Entry, out func(Entry) bool) (kept, moved []Entry) {
	n := 0
	for _, e := range src {
		if out(e) {
			dst = append(dst, e)
		} else {
			src[n] = e
			n++
		}
	}
	clear(src[n:])
	return src[:n], dst
}

// Queried records that c sent us a query at now. For a known node (same ID
// and same address) it updates LastQuery. For an unknown node it reports
// whether the table would take it, meaning "ping it, and call Responded if
// it answers"; it never inserts, since the source of a query is unproven.
// It is false for contacts Responded would refuse, so no ping is spent on
// them (near self, where a bucket may still split, it can err towards true).
func (t *Table) Queried(c Contact, now time.Time) (verify bool) {
	if !t.acceptable(c) {
		return false
	}
	b, i := t.lookup(c.ID)
	if i >= 0 {
		if b.entries[i].Addr == c.Addr {
			b.entries[i].LastQuery = now
		}
		return false
	}
	if old, ok := t.byAddr[c.Addr]; ok && t.bucketIndex(old) == t.bucketIndex(c.ID) {
		// Responded would evict the old entry first, freeing a slot.
		return true
	}
	bi := t.bucketIndex(c.ID)
	full := len(b.entries) >= t.k
	splits := full && bi == len(t.buckets)-1 && len(t.buckets) < maxBuckets
	switch {
	case t.crowded(b, c, splits, now):
		return false
	case !full || splits:
		return true
	}
	return b.hasUntrusted(now, t.maxFailures)
}

// Failed records that a query to the node at addr timed out or errored.
// After MaxFailures consecutive failures the node is Bad and gives its place
// to the most recent replacement for its bucket, if any; otherwise it stays,
// marked Bad, as the first to be replaced by a newcomer.
func (t *Table) Failed(addr netip.AddrPort, now time.Time) {
	id, ok := t.byAddr[addr]
	if !ok {
		return
	}
	b, i := t.lookup(id)
	if i < 0 {
		return
	}
	e := &b.entries[i]
	e.Failures++
	if e.State(now, t.maxFailures) != Bad {
		return
	}
	if r, ok := b.popReplacement(t.promotable(b, i)); ok {
		delete(t.byAddr, e.Addr)
		*e = r
		t.byAddr[r.Addr] = r.ID
		b.changed = now
	}
}

// promotable reports which replacements may take a place in b, whose member
// at index leaving (-1: none) is going. A candidate may have gone stale
// while cached: its address now held by a member, or its subnet's share of
// b taken by nodes that joined since.
func (t *Table) promotable(b *bucket, leaving int) func(Entry) bool {
	return func(r Entry) bool {
		if _, taken := t.byAddr[r.Addr]; taken {
			return false
		}
		subnet, capped := t.subnet(r.Addr.Addr())
		return !capped || b.countIn(subnet, leaving) < t.maxPerSubnet
	}
}

// Remove deletes the node with this ID from its bucket (and from the
// replacement cache). The freed slot goes to the most recent replacement,
// as it would for a node that went bad.
func (t *Table) Remove(id ID) { t.remove(id, true) }

func (t *Table) remove(id ID, promote bool) {
	b, i := t.lookup(id)
	if i < 0 {
		b.dropReplacement(id, netip.AddrPort{})
		return
	}
	delete(t.byAddr, b.entries[i].Addr)
	b.removeAt(i)
	if !promote {
		return
	}
	if r, ok := b.popReplacement(t.promotable(b, -1)); ok {
		b.entries = append(b.entries, r)
		t.byAddr[r.Addr] = r.ID
	}
}

// Get returns the bucket entry with this ID.
func (t *Table) Get(id ID) (Entry, bool) {
	b, i := t.lookup(id)
	if i < 0 {
		return Entry{}, false
	}
	return b.entries[i], true
}

// Entries returns a copy of every bucket entry, nearest buckets last.
func (t *Table) Entries() []Entry {
	out := make([]Entry, 0, t.Len())
	for i := range t.buckets {
		out = append(out, t.buckets[i].entries...)
	}
	return out
}

// Questionable returns the bucket members that are Questionable at now, for
// the caller to ping.
func (t *Table) Questionable(now time.Time) []Contact {
	var out []Contact
	for i := range t.buckets {
		for _, e := range t.buckets[i].entries {
			if e.State(now, t.maxFailures) == Questionable {
				out = append(out, e.Contact)
			}
		}
	}
	return out
}
