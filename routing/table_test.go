package routing

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// addrN returns a distinct address for every n < 1<<24.
func addrN(n int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), 6881)
}

// withPrefix returns a random ID sharing exactly cpl leading bits with self.
func withPrefix(self ID, cpl int, r *rand.Rand) ID {
	id := RandomID(r)
	for i := 0; i < IDLen*8; i++ {
		bit := byte(0x80) >> (i % 8)
		switch {
		case i < cpl:
			id[i/8] = id[i/8]&^bit | self[i/8]&bit
		case i == cpl:
			id[i/8] = id[i/8]&^bit | ^self[i/8]&bit
		}
	}
	return id
}

func replCount(tb *Table) int {
	n := 0
	for i := range tb.buckets {
		n += len(tb.buckets[i].repl)
	}
	return n
}

// checkInvariants verifies the structural rules every operation must keep.
func checkInvariants(t *testing.T, tb *Table) {
	t.Helper()
	if n := len(tb.buckets); n < 1 || n > maxBuckets {
		t.Fatalf("%d buckets", n)
	}
	last := len(tb.buckets) - 1
	seenAddr := map[netip.AddrPort]bool{}
	seenID := map[ID]bool{}
	count := 0
	for i := range tb.buckets {
		b := &tb.buckets[i]
		if len(b.entries) > tb.k {
			t.Fatalf("bucket %d has %d entries > k=%d", i, len(b.entries), tb.k)
		}
		if len(b.repl) > tb.replN {
			t.Fatalf("bucket %d has %d replacements > %d", i, len(b.repl), tb.replN)
		}
		for _, e := range b.entries {
			count++
			cpl := CommonPrefixLen(tb.self, e.ID)
			if (i < last && cpl != i) || (i == last && cpl < last) {
				t.Fatalf("entry %v with prefix %d in bucket %d of %d", e.ID, cpl, i, last+1)
			}
			if e.ID == tb.self || e.ID.IsZero() {
				t.Fatalf("forbidden ID %v stored", e.ID)
			}
			if seenAddr[e.Addr] || seenID[e.ID] {
				t.Fatalf("duplicate entry %v %v", e.ID, e.Addr)
			}
			seenAddr[e.Addr], seenID[e.ID] = true, true
			if id, ok := tb.byAddr[e.Addr]; !ok || id != e.ID {
				t.Fatalf("index for %v: %v %v, want %v", e.Addr, id, ok, e.ID)
			}
		}
		for _, r := range b.repl {
			cpl := CommonPrefixLen(tb.self, r.ID)
			if (i < last && cpl != i) || (i == last && cpl < last) {
				t.Fatalf("replacement with prefix %d in bucket %d", cpl, i)
			}
			if seenID[r.ID] {
				t.Fatalf("replacement %v is also a bucket member", r.ID)
			}
		}
	}
	if count != tb.Len() || len(tb.byAddr) != count {
		t.Fatalf("Len %d, index %d, counted %d", tb.Len(), len(tb.byAddr), count)
	}
}

func TestSplitting(t *testing.T) {
	r := newRand(1)
	self := RandomID(r)
	tb := New(self, Config{})
	perCPL := map[int]int{} // how many inserted IDs share each prefix length
	var ids []ID
	insert := func(id ID) {
		if ping := tb.Responded(Contact{ID: id, Addr: addrN(len(ids) + 1)}, t0); ping != nil {
			t.Fatalf("all nodes good, yet asked to ping %v", ping)
		}
		ids = append(ids, id)
		perCPL[CommonPrefixLen(self, id)]++
	}
	for range 5000 {
		insert(RandomID(r))
	}
	// A few nodes very near self, which a non-splitting table would drop.
	for cpl := 30; cpl < 40; cpl++ {
		insert(withPrefix(self, cpl, r))
	}
	checkInvariants(t, tb)
	if tb.Len() > tb.NumBuckets()*K {
		t.Fatalf("Len %d > %d buckets * K", tb.Len(), tb.NumBuckets())
	}
	last := tb.NumBuckets() - 1
	// Full resolution: each bucket holds as many of the available nodes as
	// fit; the last holds every node that belongs to it.
	for i := 0; i < last; i++ {
		if got, want := len(tb.buckets[i].entries), min(K, perCPL[i]); got != want {
			t.Errorf("bucket %d: %d entries, want %d", i, got, want)
		}
	}
	deep := 0
	for cpl, n := range perCPL {
		if cpl >= last {
			deep += n
		}
	}
	if got := len(tb.buckets[last].entries); got != deep || deep == 0 {
		t.Errorf("last bucket: %d entries, want %d", got, deep)
	}
	for _, id := range ids[5000:] {
		if _, ok := tb.Get(id); !ok {
			t.Errorf("node near self %v (prefix %d) was dropped", id, CommonPrefixLen(self, id))
		}
	}
}

func TestSplitDepthLimit(t *testing.T) {
	self := ID{0x80, 0x01}
	tb := New(self, Config{K: 1})
	// With K=1 every node forces a split down to its own prefix length;
	// the deepest possible neighbour differs only in the final bit.
	n := 0
	for cpl := 0; cpl < 160; cpl++ {
		id := self
		id[cpl/8] ^= 0x80 >> (cpl % 8)
		n++
		tb.Responded(Contact{ID: id, Addr: addrN(n)}, t0)
	}
	checkInvariants(t, tb)
	if tb.NumBuckets() != 160 || tb.Len() != 160 {
		t.Fatalf("buckets %d, len %d; want 160, 160", tb.NumBuckets(), tb.Len())
	}
	// Another node for the full bucket 100: no split possible, so it waits
	// in the replacement cache.
	id := self
	id[100/8] ^= 0x80 >> (100 % 8)
	id[19] ^= 0x40
	n++
	if ping := tb.Responded(Contact{ID: id, Addr: addrN(n)}, t0); ping != nil {
		t.Fatalf("ping %v", ping)
	}
	if tb.NumBuckets() != 160 || tb.Len() != 160 || len(tb.buckets[100].repl) != 1 {
		t.Fatalf("buckets %d, len %d, cache %v", tb.NumBuckets(), tb.Len(), tb.buckets[100].repl)
	}
	checkInvariants(t, tb)
}

func bruteClosest(tb *Table, target ID, k int, now time.Time) []Contact {
	var all []Contact
	for _, e := range tb.Entries() {
		if e.State(now, tb.maxFailures) != Bad {
			all = append(all, e.Contact)
		}
	}
	slices.SortFunc(all, func(a, b Contact) int {
		return a.ID.Distance(target).Cmp(b.ID.Distance(target))
	})
	return all[:min(k, len(all))]
}

func TestClosestMatchesBruteForce(t *testing.T) {
	r := newRand(2)
	self := RandomID(r)
	// No replacement cache, so nodes that fail stay in place as Bad and
	// Closest must skip them.
	tb := New(self, Config{ReplacementCache: -1})
	n := 0
	for range 3000 {
		n++
		tb.Responded(Contact{ID: RandomID(r), Addr: addrN(n)}, t0)
	}
	for cpl := 5; cpl < 25; cpl++ {
		for range 3 {
			n++
			tb.Responded(Contact{ID: withPrefix(self, cpl, r), Addr: addrN(n)}, t0)
		}
	}
	entries := tb.Entries()
	for i, e := range entries {
		if i%5 == 0 {
			tb.Failed(e.Addr, t0)
			tb.Failed(e.Addr, t0)
		}
	}
	checkInvariants(t, tb)
	bad := 0
	for _, e := range tb.Entries() {
		if e.State(t0, 0) == Bad {
			bad++
		}
	}
	if bad == 0 {
		t.Fatal("setup: no bad nodes")
	}
	targets := []ID{self}
	for range 300 {
		targets = append(targets, RandomID(r))
	}
	for cpl := 0; cpl < tb.NumBuckets()+3; cpl++ {
		targets = append(targets, withPrefix(self, cpl, r))
	}
	for _, e := range entries[:20] {
		targets = append(targets, e.ID) // a target that is itself a member
	}
	for _, target := range targets {
		for _, k := range []int{1, 3, 8, 20, 100, 10000} {
			got := tb.Closest(target, k, t0)
			want := bruteClosest(tb, target, k, t0)
			if !slices.Equal(got, want) {
				t.Fatalf("Closest(%v, %d):\n got %v\nwant %v", target, k, got, want)
			}
		}
	}
	if got := tb.Closest(self, 0, t0); len(got) != 0 {
		t.Fatalf("k=0 returned %v", got)
	}
	if got := New(self, Config{}).Closest(self, 8, t0); len(got) != 0 {
		t.Fatalf("empty table returned %v", got)
	}
}

// fullFarBucket returns a table whose bucket 0 (IDs differing from self in
// the first bit) is full and can no longer split. Member j responded at
// t0+j seconds.
func fullFarBucket(t *testing.T, cfg Config) (*Table, []Contact, *rand.Rand) {
	t.Helper()
	r := newRand(3)
	var self ID
	self[0] = 0x80
	self[19] = 1
	tb := New(self, cfg)
	var members []Contact
	for j := range tb.k {
		c := Contact{ID: withPrefix(self, 0, r), Addr: addrN(j + 1)}
		if ping := tb.Responded(c, t0.Add(time.Duration(j)*time.Second)); ping != nil {
			t.Fatalf("ping %v while filling", ping)
		}
		members = append(members, c)
	}
	// A node near self makes bucket 0 non-last.
	tb.Responded(Contact{ID: withPrefix(self, 10, r), Addr: addrN(1000)}, t0)
	if tb.NumBuckets() < 2 || len(tb.buckets[0].entries) != tb.k {
		t.Fatalf("setup: %d buckets, %d in bucket 0", tb.NumBuckets(), len(tb.buckets[0].entries))
	}
	return tb, members, r
}

func TestEviction(t *testing.T) {
	tb, members, r := fullFarBucket(t, Config{})
	self := tb.Self()
	now := t0.Add(time.Minute)

	// All members good: the newcomer waits in the cache, nothing to ping.
	n1 := Contact{ID: withPrefix(self, 0, r), Addr: addrN(101)}
	if ping := tb.Responded(n1, now); len(ping) != 0 {
		t.Fatalf("all-good bucket asked to ping %v", ping)
	}
	if _, ok := tb.Get(n1.ID); ok {
		t.Fatal("newcomer entered a full bucket")
	}
	if len(tb.buckets[0].repl) != 1 {
		t.Fatalf("replacement cache %v", tb.buckets[0].repl)
	}

	// Once members are questionable, a newcomer asks for them, oldest
	// response first (member 0 answered again, so it comes last). Member 3
	// queried us recently, so it is still good.
	tb.Responded(members[0], t0.Add(2*time.Minute))
	now = t0.Add(20 * time.Minute)
	tb.Queried(members[3], now.Add(-time.Minute))
	n2 := Contact{ID: withPrefix(self, 0, r), Addr: addrN(102)}
	ping := tb.Responded(n2, now)
	want := slices.Concat(members[1:3], members[4:], members[:1])
	if !slices.Equal(ping, want) {
		t.Fatalf("ping %v\nwant %v", ping, want)
	}

	// One failure is forgiven.
	tb.Failed(members[0].Addr, now)
	if e, ok := tb.Get(members[0].ID); !ok || e.Failures != 1 {
		t.Fatalf("after one failure: %+v %v", e, ok)
	}
	// The second makes it bad: the most recent replacement (n2) takes over.
	tb.Failed(members[0].Addr, now)
	if _, ok := tb.Get(members[0].ID); ok {
		t.Fatal("bad node not replaced")
	}
	if e, ok := tb.Get(n2.ID); !ok || !e.LastResponse.Equal(now) {
		t.Fatalf("n2 not promoted: %+v %v", e, ok)
	}
	tb.Failed(members[1].Addr, now)
	tb.Failed(members[1].Addr, now)
	if _, ok := tb.Get(n1.ID); !ok {
		t.Fatal("n1 not promoted")
	}
	// Cache empty: a bad node stays, marked bad, and is skipped by Closest.
	tb.Failed(members[2].Addr, now)
	tb.Failed(members[2].Addr, now)
	e, ok := tb.Get(members[2].ID)
	if !ok || e.State(now, 0) != Bad {
		t.Fatalf("members[2]: %+v %v", e, ok)
	}
	for _, c := range tb.Closest(members[2].ID, 100, now) {
		if c == members[2] {
			t.Fatal("Closest returned a bad node")
		}
	}
	// The next newcomer replaces it directly.
	n3 := Contact{ID: withPrefix(self, 0, r), Addr: addrN(103)}
	if ping := tb.Responded(n3, now); ping != nil {
		t.Fatalf("ping %v though a bad node was replaceable", ping)
	}
	if _, ok := tb.Get(members[2].ID); ok {
		t.Fatal("bad node still present")
	}
	if _, ok := tb.Get(n3.ID); !ok {
		t.Fatal("n3 not inserted over bad node")
	}
	if tb.Failed(members[2].Addr, now); tb.Len() != K+1 {
		t.Fatalf("Len %d", tb.Len())
	}
	checkInvariants(t, tb)
}

func TestReplacementCacheKeepsMostRecent(t *testing.T) {
	tb, members, r := fullFarBucket(t, Config{ReplacementCache: 2})
	self := tb.Self()
	var cands []Contact
	for i := range 3 {
		c := Contact{ID: withPrefix(self, 0, r), Addr: addrN(200 + i)}
		tb.Responded(c, t0.Add(time.Duration(i)*time.Minute))
		cands = append(cands, c)
	}
	// A candidate that answers again moves to the most recent position.
	tb.Responded(cands[1], t0.Add(5*time.Minute))
	for i := range 3 {
		tb.Failed(members[i].Addr, t0)
		tb.Failed(members[i].Addr, t0)
	}
	if _, ok := tb.Get(cands[0].ID); ok {
		t.Fatal("oldest candidate should have been dropped")
	}
	e1, ok1 := tb.Get(cands[1].ID)
	_, ok2 := tb.Get(cands[2].ID)
	if !ok1 || !ok2 || !e1.LastResponse.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("promotions: %v %v %+v", ok1, ok2, e1)
	}
	if e, ok := tb.Get(members[2].ID); !ok || e.State(t0, 0) != Bad {
		t.Fatal("third bad node should stay: cache exhausted")
	}
	checkInvariants(t, tb)

	// Removing a member promotes too.
	tb2, members2, r2 := fullFarBucket(t, Config{})
	c := Contact{ID: withPrefix(tb2.Self(), 0, r2), Addr: addrN(300)}
	tb2.Responded(c, t0)
	tb2.Remove(members2[0].ID)
	if _, ok := tb2.Get(members2[0].ID); ok {
		t.Fatal("Remove did not remove")
	}
	if _, ok := tb2.Get(c.ID); !ok {
		t.Fatal("Remove did not promote")
	}
	checkInvariants(t, tb2)
}

func TestStates(t *testing.T) {
	tb := New(ID{1}, Config{ReplacementCache: -1})
	c := Contact{ID: ID{2}, Addr: addrN(1)}
	state := func(now time.Time) State {
		t.Helper()
		e, ok := tb.Get(c.ID)
		if !ok {
			t.Fatal("node vanished")
		}
		return e.State(now, tb.maxFailures)
	}
	tb.Responded(c, t0)
	if s := state(t0.Add(QuestionableAfter - time.Second)); s != Good {
		t.Fatalf("after 14m59s: %v", s)
	}
	if s := state(t0.Add(QuestionableAfter)); s != Questionable {
		t.Fatalf("after 15m: %v", s)
	}
	if qs := tb.Questionable(t0.Add(QuestionableAfter)); !slices.Equal(qs, []Contact{c}) {
		t.Fatalf("Questionable: %v", qs)
	}
	if qs := tb.Questionable(t0); len(qs) != 0 {
		t.Fatalf("Questionable while good: %v", qs)
	}
	// A query from a node that has responded before keeps it good.
	tq := t0.Add(20 * time.Minute)
	tb.Queried(c, tq)
	if s := state(tq.Add(QuestionableAfter - time.Second)); s != Good {
		t.Fatalf("after query: %v", s)
	}
	if s := state(tq.Add(QuestionableAfter)); s != Questionable {
		t.Fatalf("15m after query: %v", s)
	}
	// A query from another address with the same ID changes nothing.
	tb.Queried(Contact{ID: c.ID, Addr: addrN(2)}, tq.Add(time.Hour))
	if s := state(tq.Add(time.Hour)); s != Questionable {
		t.Fatalf("spoofed query refreshed the node: %v", s)
	}
	// Queries alone never make a node good.
	if s := (Entry{Contact: c, LastQuery: t0}).State(t0, 0); s != Questionable {
		t.Fatalf("never-responded node: %v", s)
	}
	// Failures.
	now := t0.Add(2 * time.Hour)
	tb.Responded(c, now)
	tb.Failed(c.Addr, now)
	if s := state(now); s != Good {
		t.Fatalf("one failure: %v", s)
	}
	tb.Responded(c, now)
	if e, _ := tb.Get(c.ID); e.Failures != 0 {
		t.Fatalf("response did not reset failures: %d", e.Failures)
	}
	tb.Failed(c.Addr, now)
	if s := state(now); s != Good {
		t.Fatalf("failure count not reset: %v", s)
	}
	tb.Failed(c.Addr, now)
	if s := state(now); s != Bad {
		t.Fatalf("two failures: %v", s)
	}
	if qs := tb.Questionable(now.Add(time.Hour)); len(qs) != 0 {
		t.Fatalf("bad node listed as questionable: %v", qs)
	}
	tb.Responded(c, now.Add(time.Second))
	if s := state(now.Add(time.Second)); s != Good {
		t.Fatalf("bad node answered: %v", s)
	}
	// MaxFailures is configurable.
	tb3 := New(ID{1}, Config{MaxFailures: 3, ReplacementCache: -1})
	tb3.Responded(c, now)
	tb3.Failed(c.Addr, now)
	tb3.Failed(c.Addr, now)
	if e, _ := tb3.Get(c.ID); e.State(now, tb3.maxFailures) != Good {
		t.Fatal("MaxFailures=3: bad after 2")
	}
	tb3.Failed(c.Addr, now)
	if e, _ := tb3.Get(c.ID); e.State(now, tb3.maxFailures) != Bad {
		t.Fatal("MaxFailures=3: not bad after 3")
	}
	for s, want := range map[State]string{Good: "good", Questionable: "questionable", Bad: "bad", 7: "State(7)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", int(s), s.String())
		}
	}
}

func TestQueried(t *testing.T) {
	tb, members, r := fullFarBucket(t, Config{})
	self := tb.Self()
	before := tb.Len()
	now := t0.Add(time.Minute)

	// Unknown node with room (bucket near self): verify, but not inserted.
	near := Contact{ID: withPrefix(self, 3, r), Addr: addrN(500)}
	if !tb.Queried(near, now) {
		t.Fatal("room in bucket but verify=false")
	}
	if _, ok := tb.Get(near.ID); ok || tb.Len() != before {
		t.Fatal("Queried inserted a node")
	}
	// Unknown node for the last bucket (can split): verify.
	if !tb.Queried(Contact{ID: withPrefix(self, 150, r), Addr: addrN(501)}, now) {
		t.Fatal("splittable bucket but verify=false")
	}
	// Full bucket, all good: no point.
	far := Contact{ID: withPrefix(self, 0, r), Addr: addrN(502)}
	if tb.Queried(far, now) {
		t.Fatal("full all-good bucket but verify=true")
	}
	// Questionable members: worth verifying.
	if !tb.Queried(far, t0.Add(time.Hour)) {
		t.Fatal("questionable members but verify=false")
	}
	// Known node: updates LastQuery, no verify.
	if tb.Queried(members[0], now) {
		t.Fatal("known node: verify=true")
	}
	if e, _ := tb.Get(members[0].ID); !e.LastQuery.Equal(now) {
		t.Fatalf("LastQuery %v", e.LastQuery)
	}
	// Known ID at another address: ignored.
	if tb.Queried(Contact{ID: members[0].ID, Addr: addrN(503)}, now.Add(time.Second)) {
		t.Fatal("ID hijack: verify=true")
	}
	if e, _ := tb.Get(members[0].ID); !e.LastQuery.Equal(now) {
		t.Fatal("ID hijack updated LastQuery")
	}
	// A bad member: verify.
	tb2, members2, r2 := fullFarBucket(t, Config{ReplacementCache: -1})
	tb2.Failed(members2[0].Addr, now)
	tb2.Failed(members2[0].Addr, now)
	if !tb2.Queried(Contact{ID: withPrefix(tb2.Self(), 0, r2), Addr: addrN(504)}, now) {
		t.Fatal("bad member but verify=false")
	}
	// A known address with a new ID in the same full bucket: verify, since
	// Responded would replace the old entry.
	if !tb.Queried(Contact{ID: withPrefix(self, 0, r), Addr: members[1].Addr}, now) {
		t.Fatal("address reuse but verify=false")
	}
	// Never for self or zero.
	if tb.Queried(Contact{ID: self, Addr: addrN(505)}, now) || tb.Queried(Contact{ID: ID{}, Addr: addrN(506)}, now) {
		t.Fatal("verify self or zero ID")
	}
	if tb.Len() != before {
		t.Fatal("Queried changed Len")
	}
	checkInvariants(t, tb)
}

func TestIdentity(t *testing.T) {
	self := ID{0xaa}
	tb := New(self, Config{})
	a := Contact{ID: ID{1}, Addr: addrN(1)}
	tb.Responded(a, t0)

	// Same ID, other address: the holder keeps it.
	tb.Responded(Contact{ID: a.ID, Addr: addrN(2)}, t0.Add(time.Minute))
	if e, ok := tb.Get(a.ID); !ok || e.Addr != a.Addr || !e.LastResponse.Equal(t0) {
		t.Fatalf("ID hijacked: %+v", e)
	}
	if tb.Len() != 1 {
		t.Fatalf("Len %d", tb.Len())
	}
	tb.Failed(addrN(2), t0)
	if e, _ := tb.Get(a.ID); e.Failures != 0 {
		t.Fatal("failure at hijacker's address counted against the holder")
	}

	// Self, zero ID and unusable addresses are never stored.
	tb.Responded(Contact{ID: self, Addr: addrN(3)}, t0)
	tb.Responded(Contact{ID: ID{}, Addr: addrN(4)}, t0)
	tb.Responded(Contact{ID: ID{5}, Addr: netip.AddrPort{}}, t0)
	tb.Responded(Contact{ID: ID{6}, Addr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.9"), 0)}, t0)
	if tb.Len() != 1 {
		t.Fatalf("Len %d after forbidden inserts", tb.Len())
	}

	// Address reuse: the node restarted with a new ID; the old entry goes.
	b := Contact{ID: ID{2}, Addr: a.Addr}
	tb.Responded(b, t0.Add(time.Minute))
	if _, ok := tb.Get(a.ID); ok {
		t.Fatal("old ID still present at reused address")
	}
	if _, ok := tb.Get(b.ID); !ok {
		t.Fatal("new ID not inserted")
	}
	tb.Failed(a.Addr, t0)
	if e, _ := tb.Get(b.ID); e.Failures != 1 {
		t.Fatal("address index not moved to new ID")
	}
	if tb.Len() != 1 {
		t.Fatalf("Len %d", tb.Len())
	}

	// Remove, and removing an unknown ID is harmless.
	tb.Remove(b.ID)
	tb.Remove(ID{9})
	if tb.Len() != 0 || len(tb.Entries()) != 0 {
		t.Fatalf("Len %d after Remove", tb.Len())
	}
	tb.Failed(a.Addr, t0) // unknown address: no effect, no panic
	checkInvariants(t, tb)
}

func TestRefresh(t *testing.T) {
	r := newRand(4)
	self := RandomID(r)
	tb := New(self, Config{})
	if got := tb.Refresh(t0.Add(time.Hour), r); got != nil {
		t.Fatalf("empty table asked for refresh: %v", got)
	}
	for i := range 500 {
		tb.Responded(Contact{ID: RandomID(r), Addr: addrN(i + 1)}, t0)
	}
	if got := tb.Refresh(t0.Add(RefreshAfter-time.Second), r); got != nil {
		t.Fatalf("early refresh: %v", got)
	}
	t1 := t0.Add(RefreshAfter)
	got := tb.Refresh(t1, r)
	if len(got) != tb.NumBuckets() {
		t.Fatalf("%d targets for %d buckets", len(got), tb.NumBuckets())
	}
	for i, id := range got {
		if bi := tb.bucketIndex(id); bi != i {
			t.Errorf("target %d falls in bucket %d", i, bi)
		}
	}
	if got := tb.Refresh(t1.Add(time.Second), r); got != nil {
		t.Fatalf("refreshed again too soon: %v", got)
	}
	// A response in bucket 0 postpones only bucket 0.
	e0 := tb.buckets[0].entries[0]
	tb.Responded(e0.Contact, t1.Add(5*time.Minute))
	got = tb.Refresh(t1.Add(RefreshAfter), r)
	if len(got) != tb.NumBuckets()-1 {
		t.Fatalf("%d targets, want %d", len(got), tb.NumBuckets()-1)
	}
	for _, id := range got {
		if tb.bucketIndex(id) == 0 {
			t.Fatal("bucket 0 refreshed though it just changed")
		}
	}
	if got := tb.Refresh(t1.Add(RefreshAfter+5*time.Minute), r); len(got) != 1 || tb.bucketIndex(got[0]) != 0 {
		t.Fatalf("bucket 0 due: %v", got)
	}
}

func TestRandomIDInEveryBucket(t *testing.T) {
	r := newRand(5)
	self := RandomID(r)
	tb := New(self, Config{})
	for n := 1; n <= maxBuckets; n++ {
		tb.buckets = make([]bucket, n)
		for i := range n {
			for range 4 {
				if bi := tb.bucketIndex(tb.randomIDIn(i, r)); bi != i {
					t.Fatalf("%d buckets: target for %d falls in %d", n, i, bi)
				}
			}
		}
	}
}

func TestBounded(t *testing.T) {
	r := newRand(6)
	self := RandomID(r)
	tb := New(self, Config{})
	now := t0
	for i := range 100_000 {
		now = now.Add(time.Second)
		var id ID
		if i%10 == 0 {
			id = withPrefix(self, r.IntN(160), r) // push deep buckets too
		} else {
			id = RandomID(r)
		}
		tb.Responded(Contact{ID: id, Addr: addrN(i + 1)}, now)
		if i%7 == 0 {
			// Fail a random known node so that promotions happen.
			es := tb.buckets[r.IntN(len(tb.buckets))].entries
			if len(es) > 0 {
				tb.Failed(es[r.IntN(len(es))].Addr, now)
			}
		}
	}
	checkInvariants(t, tb)
	bound := maxBuckets * (tb.k + tb.replN)
	if n := tb.Len() + replCount(tb); n > bound {
		t.Fatalf("%d contacts held, bound %d", n, bound)
	}
	if len(tb.byAddr) > maxBuckets*tb.k {
		t.Fatalf("address index has %d entries", len(tb.byAddr))
	}
}

// TestRandomOperations drives the table with a small ID and address space
// so that collisions, reuse, failures and removals interleave, and checks
// the invariants throughout.
func TestRandomOperations(t *testing.T) {
	r := newRand(7)
	var self ID
	self[0] = 0x55
	tb := New(self, Config{K: 3, ReplacementCache: 2})
	ids := make([]ID, 64)
	for i := range ids {
		ids[i] = withPrefix(self, r.IntN(12), r)
	}
	ids[0] = self
	now := t0
	for step := range 20_000 {
		now = now.Add(time.Duration(r.IntN(120)) * time.Second)
		c := Contact{ID: ids[r.IntN(len(ids))], Addr: addrN(r.IntN(40))}
		switch r.IntN(6) {
		case 0, 1:
			tb.Responded(c, now)
		case 2:
			tb.Queried(c, now)
		case 3, 4:
			tb.Failed(c.Addr, now)
		case 5:
			if r.IntN(4) == 0 {
				tb.Remove(c.ID)
			}
			tb.Closest(c.ID, 5, now)
			tb.Refresh(now, r)
			tb.Questionable(now)
		}
		if step%97 == 0 {
			checkInvariants(t, tb)
		}
	}
	checkInvariants(t, tb)
}

func BenchmarkClosest(b *testing.B) {
	r := newRand(8)
	tb := New(RandomID(r), Config{})
	for i := range 10_000 {
		tb.Responded(Contact{ID: RandomID(r), Addr: addrN(i + 1)}, t0)
	}
	targets := make([]ID, 1024)
	for i := range targets {
		targets[i] = RandomID(r)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.Closest(targets[i%len(targets)], K, t0)
		i++
	}
}

func BenchmarkResponded(b *testing.B) {
	r := newRand(9)
	tb := New(RandomID(r), Config{})
	cs := make([]Contact, 1<<16)
	for i := range cs {
		cs[i] = Contact{ID: RandomID(r), Addr: addrN(i + 1)}
	}
	b.ReportAllocs()
	i := 0
	now := t0
	for b.Loop() {
		now = now.Add(time.Millisecond)
		tb.Responded(cs[i%len(cs)], now)
		i++
	}
}

// emptyDepthOfLast reports whether id falls in the last bucket at a
// depth that none of its members has: a bucket a split would leave empty.
func emptyDepthOfLast(tb *Table, id ID) bool {
	last := len(tb.buckets) - 1
	d := CommonPrefixLen(tb.self, id)
	if d < last {
		return false
	}
	for _, e := range tb.buckets[last].entries {
		if CommonPrefixLen(tb.self, e.ID) <= d {
			return false
		}
	}
	return true
}

// A warm start's own-ID lookup hears from the K saved nodes nearest self
// first: they fill the one bucket of a new table, all of them deep. Every
// depth above theirs must get a target, or the far buckets fill only by
// chance (a restarted daemon kept 36 nodes where its first run had 176).
func TestSparseWarmStart(t *testing.T) {
	r := newRand(11)
	self := RandomID(r)
	tb := New(self, Config{})
	const depth = 20
	for i := range K {
		id := tb.randomIDAt(depth+i%3, true, r)
		if ping := tb.Responded(Contact{ID: id, Addr: addrN(i + 1)}, t0); ping != nil {
			t.Fatalf("node %d not taken", i)
		}
	}
	if tb.NumBuckets() != 1 {
		t.Fatalf("%d buckets, want 1 (K nodes fit unsplit)", tb.NumBuckets())
	}
	got := tb.Sparse(r)
	if len(got) != depth {
		t.Fatalf("%d targets, want one for each of depths 0..%d", len(got), depth-1)
	}
	for d, id := range got {
		if cpl := CommonPrefixLen(self, id); cpl != d {
			t.Errorf("target %d at depth %d", d, cpl)
		}
	}
	// Once the depths are filled (K nodes each), nothing is sparse.
	n := K
	for d := range depth {
		for range K {
			n++
			tb.Responded(Contact{ID: tb.randomIDAt(d, true, r), Addr: addrN(n)}, t0)
		}
	}
	if got := tb.Sparse(r); len(got) != 0 {
		t.Errorf("full table: %d sparse targets", len(got))
	}
}

func TestSparse(t *testing.T) {
	r := newRand(9)
	self := RandomID(r)
	tb := New(self, Config{})
	if got := tb.Sparse(r); len(got) != 1 || tb.bucketIndex(got[0]) != 0 {
		t.Fatalf("empty table: %v", got)
	}
	for i := range 2000 {
		tb.Responded(Contact{ID: RandomID(r), Addr: addrN(i + 1)}, t0)
	}
	got := tb.Sparse(r)
	want := 0
	for i := range tb.buckets {
		if len(tb.buckets[i].entries) < K {
			want++
		}
	}
	last := &tb.buckets[len(tb.buckets)-1]
	if len(last.entries) > 0 {
		shallowest := IDLen * 8
		for _, e := range last.entries {
			shallowest = min(shallowest, CommonPrefixLen(self, e.ID))
		}
		want += shallowest - (len(tb.buckets) - 1)
	}
	if len(got) != want || want == 0 {
		t.Fatalf("%d targets for %d sparse buckets", len(got), want)
	}
	for _, id := range got {
		if b := &tb.buckets[tb.bucketIndex(id)]; len(b.entries) >= K && !emptyDepthOfLast(tb, id) {
			t.Errorf("target %v falls in a full bucket", id)
		}
	}
	// 2000 random nodes fill every far bucket: only the deep ones near
	// self can be sparse.
	if tb.bucketIndex(got[0]) < 4 {
		t.Errorf("far bucket %d reported sparse", tb.bucketIndex(got[0]))
	}
}
