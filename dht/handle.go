package dht

import (
	"bytes"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"node/krpc"
	"node/routing"
)

// Queries are answered on the socket's reader goroutine, with no round
// trip to the loop: what an answer needs is either published by the loop
// as an immutable view (the routing table's usable contacts, sorted by ID)
// or safe to share (our ID, the token secrets, the peer store with its
// lock). Only what must change the loop's state — "this node queried us",
// which refreshes its entry or earns it a verification ping — goes to the
// loop, as a note sent without waiting and at most once per queriedNoteEvery
// per (ID, address), so a flood of queries does not become a flood of
// events. The reader answers into buffers it reuses (server), so a ping or
// a get_peers costs no allocation once warm.

// BEP 51 sample_infohashes answers.
const (
	// SampleInterval is the "interval" we advertise, and how long one
	// random sample is served. BEP 51 allows up to six hours; a minute
	// keeps a crawler's view of a small store fresh while still capping
	// how fast it can page through a big one.
	SampleInterval = time.Minute
	// maxSamples keeps the answer within one packet even beside K IPv6
	// nodes: 20 hashes (400 bytes) plus 8 nodes6 (304) and the rest is
	// well under the 1280-byte IPv6 minimum MTU. Under an amplification
	// bound the answer carries fewer, as many as fit (samplesThatFit).
	maxSamples = 20
)

// queriedNoteEvery is how often one querier is reported to the loop. Its
// entry's LastQuery matters at the 15-minute scale of routing.Entry.State,
// and a node that failed verification can wait this long to be retried.
const queriedNoteEvery = time.Minute

// view is the loop's snapshot of what answering needs from the routing
// table: the contacts Closest would consider (every one that is not Bad),
// sorted by ID. It is never modified once published.
type view struct {
	nodes []routing.Contact
	// fam holds nodes' contacts split by family (fam4, fam6), each sorted
	// by ID: a BEP 32 answer carries each family in its own key, K each.
	fam [2][]routing.Contact
}

// Address families, as indexes and as bits of a set.
const (
	fam4 = 0
	fam6 = 1
)

// familyOf is a's family; an IPv4-mapped IPv6 address is IPv4.
func familyOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return fam4
	}
	return fam6
}

// closest appends to out up to k contacts of v nearest to target by XOR
// distance, nearest first, as routing.Table.Closest does.
func (v *view) closest(out []routing.Contact, target routing.ID, k int) []routing.Contact {
	return appendClosest(out, v.nodes, &target, k+len(out), 0)
}

// appendClosest appends the contacts of s nearest to target until out
// holds k. Every contact of s shares its first bit bits with the others
// (s is sorted by ID), so s splits at its first differing bit into two
// ranges, and every contact of the range on target's side of that bit is
// nearer than any of the other: the nearer range is taken first, and a
// range that fits whole is sorted and taken as is.
func appendClosest(out, s []routing.Contact, target *routing.ID, k, bit int) []routing.Contact {
	for len(s) > 0 && len(out) < k {
		if need := k - len(out); len(s) <= need {
			from := len(out)
			out = append(out, s...)
			sortByDistance(out[from:], target)
			return out
		}
		bit = max(bit, routing.CommonPrefixLen(s[0].ID, s[len(s)-1].ID))
		if bit >= routing.IDLen*8 { // equal IDs: cannot happen in a table
			return append(out, s[:k-len(out)]...)
		}
		// The first contact with the bit set; they all come after those
		// without it.
		lo, hi := 0, len(s)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if idBit(&s[m].ID, bit) {
				hi = m
			} else {
				lo = m + 1
			}
		}
		near, far := s[:lo], s[lo:]
		if idBit(target, bit) {
			near, far = far, near
		}
		out = appendClosest(out, near, target, k, bit+1)
		s = far
		bit++
	}
	return out
}

func idBit(id *routing.ID, i int) bool { return id[i/8]&(0x80>>(i%8)) != 0 }

// sortByDistance is an insertion sort: it only ever sees a few contacts.
func sortByDistance(cs []routing.Contact, target *routing.ID) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && closer(target, &cs[j].ID, &cs[j-1].ID); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func closer(target, a, b *routing.ID) bool {
	for i := range target {
		if da, db := a[i]^target[i], b[i]^target[i]; da != db {
			return da < db
		}
	}
	return false
}

// newView builds the view of table's contacts.
func newView(es []routing.Entry, now time.Time) *view {
	cs := make([]routing.Contact, 0, len(es))
	for _, e := range es {
		if e.State(now, 0) != routing.Bad {
			cs = append(cs, e.Contact)
		}
	}
	slices.SortFunc(cs, func(a, b routing.Contact) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	v := &view{nodes: cs}
	n4 := 0
	for _, c := range cs {
		if familyOf(c.Addr.Addr()) == fam4 {
			n4++
		}
	}
	// A table of one family, the usual case, shares nodes as that
	// family's list rather than holding a second copy.
	switch n4 {
	case len(cs):
		v.fam[fam4] = cs
	case 0:
		v.fam[fam6] = cs
	default:
		for _, c := range cs {
			f := familyOf(c.Addr.Addr())
			v.fam[f] = append(v.fam[f], c)
		}
	}
	return v
}

// closestOf is closest over the contacts of family f alone.
func (v *view) closestOf(out []routing.Contact, target routing.ID, k, f int) []routing.Contact {
	return appendClosest(out, v.fam[f], &target, k+len(out), 0)
}

// server is the memory the socket's reader answers in. Only that
// goroutine touches it: the transport calls the handler from it alone, and
// encodes each answer before the next call.
type server struct {
	reply  krpc.Msg
	ret    krpc.Return
	ip     krpc.Addr
	nodes  [routing.K]routing.Contact
	nodes6 [routing.K]routing.Contact
	values []netip.AddrPort // cap MaxValues
	toks   tokenCache
	noted  noteCache
	rng    *rand.Rand // for BEP 51 samples
	// sizeBuf is where a sample_infohashes answer is measured.
	sizeBuf []byte
}

func newServer(maxValues int) *server {
	return &server{
		values: make([]netip.AddrPort, 0, maxValues),
		noted:  noteCache{seed: maphash.MakeSeed()},
		rng:    rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
}

// noteCache remembers which queriers were recently reported to the loop:
// 4-way sets of (hash of ID and address, time), the oldest of a set
// replaced. A querier pushed out early only costs an extra note; the ways
// keep a few queriers that share a set from evicting each other on every
// query. It starts with minNoteCacheSets and grows fourfold, keeping what
// it held, whenever a note would push out one still current, up to
// noteCacheSets: a node that few query keeps a few hundred bytes, not
// the full 64 KiB.
type noteCache struct {
	seed maphash.Seed
	sets [][noteCacheWays]struct{ h, at uint64 }
}

const (
	noteCacheSets    = 1024
	minNoteCacheSets = 4
	noteCacheWays    = 4
)

// due reports whether c should be reported at now; record says it was.
func (nc *noteCache) due(c routing.Contact, now time.Time) (h uint64, ok bool) {
	var key [routing.IDLen + 18]byte
	copy(key[:], c.ID[:])
	a16 := c.Addr.Addr().As16()
	copy(key[routing.IDLen:], a16[:])
	key[len(key)-2], key[len(key)-1] = byte(c.Addr.Port()>>8), byte(c.Addr.Port())
	h = maphash.Bytes(nc.seed, key[:])
	t := uint64(now.UnixNano())
	if len(nc.sets) == 0 {
		return h, true
	}
	for _, w := range &nc.sets[h%uint64(len(nc.sets))] {
		if w.h == h {
			return h, t-w.at >= uint64(queriedNoteEvery) || t < w.at
		}
	}
	return h, true
}

func (nc *noteCache) record(h uint64, now time.Time) {
	if len(nc.sets) == 0 {
		nc.sets = make([][noteCacheWays]struct{ h, at uint64 }, minNoteCacheSets)
	}
	t := uint64(now.UnixNano())
	for !nc.put(h, t, len(nc.sets) < noteCacheSets) {
		old := nc.sets
		nc.sets = make([][noteCacheWays]struct{ h, at uint64 }, min(4*len(old), noteCacheSets))
		for i := range old {
			for _, w := range old[i] {
				if w.at != 0 {
					nc.put(w.h, w.at, false)
				}
			}
		}
	}
}

// put notes h at t in its set, in place of its own older note or the
// set's oldest. When that oldest is still current (younger than
// queriedNoteEvery) and the cache may grow, it puts nothing and reports
// false.
func (nc *noteCache) put(h, t uint64, mayGrow bool) bool {
	set := &nc.sets[h%uint64(len(nc.sets))]
	victim := 0
	for i := range set {
		if set[i].h == h {
			victim = i
			break
		}
		if set[i].at < set[victim].at {
			victim = i
		}
	}
	if v := set[victim]; mayGrow && v.h != h && v.at != 0 && t-v.at < uint64(queriedNoteEvery) && t >= v.at {
		return false
	}
	set[victim] = struct{ h, at uint64 }{h, t}
	return true
}

// handleQuery is the Transport's Handler, on the socket's reader
// goroutine. q is borrowed (krpc.Config.BorrowQuery); the answer is built
// in n.srv, which the transport encodes before it calls again.
func (n *Node) handleQuery(from netip.AddrPort, q *krpc.Msg) *krpc.Msg {
	now := n.cfg.Now()
	self := n.ID()
	a := q.A
	s := n.srv
	// A read-only node (BEP 43) cannot answer queries, so it must not be
	// handed to others; anyone else is pinged before it is trusted.
	if !q.ReadOnly() && n.usable(from) && a.ID != self {
		c := routing.Contact{ID: a.ID, Addr: from}
		// The length check first: boxing the event allocates, which a
		// busy loop's full channel would otherwise cost every query.
		if h, due := s.noted.due(c, now); due && len(n.events) < cap(n.events) {
			select {
			case n.events <- queriedEvent{c: c}:
				s.noted.record(h, now)
			default: // the loop is busy; a later query will tell it
			}
		}
	}
	r := &s.ret
	*r = krpc.Return{ID: self}
	s.ip = krpc.Addr(from)
	s.reply = krpc.Msg{R: r, IP: &s.ip}
	switch q.Q {
	case krpc.MethodPing:
	case krpc.MethodFindNode:
		if a.Target == nil {
			return protocolError("find_node: missing target")
		}
		s.setNodes(r, n, *a.Target, wanted(a, from))
		if n.cfg.MaxAmplification > 0 && r.Nodes != nil && r.Nodes6 != nil {
			s.fitNodes(q.T, familyOf(from.Addr()))
		}
	case krpc.MethodGetPeers:
		if a.InfoHash == nil {
			return protocolError("get_peers: missing info_hash")
		}
		r.Token = s.toks.issue(n.tok, from.Addr())
		// BEP 32's two DHTs are independent: want picks the nodes an
		// answer carries, but values are the querier's own family's, as
		// libtorrent serves them, so an IPv6 peer never goes out over
		// IPv4 nor two families in one values list.
		fams := wanted(a, from)
		if r.Values = n.store.appendPeers(s.values[:0], *a.InfoHash, now, n.cfg.MaxValues, a.NoSeed == 1, 1<<familyOf(from.Addr())); len(r.Values) == 0 {
			r.Values = nil // no values key at all
		}
		if a.Scrape == 1 { // BEP 33
			r.BFsd, r.BFpe = n.store.scrape(*a.InfoHash, now)
		}
		// Nodes too, even with values: the asker's lookup keeps converging
		// on the closest nodes, which are the ones it will announce to.
		// Under an amplification bound the answer must stay small, so
		// values come alone (BEP 5's values-or-nodes), as many as fit.
		switch {
		case n.cfg.MaxAmplification > 0 && (r.BFsd != nil || r.BFpe != nil):
			r.Values = nil // the filters alone fill the allowance
		case n.cfg.MaxAmplification > 0 && len(r.Values) > 0:
			r.Values = r.Values[:min(len(r.Values), maxBoundedValues)]
		default:
			s.setNodes(r, n, *a.InfoHash, fams)
			if n.cfg.MaxAmplification > 0 && r.Nodes != nil && r.Nodes6 != nil {
				s.fitNodes(q.T, familyOf(from.Addr()))
			}
		}
	case krpc.MethodAnnouncePeer:
		if a.InfoHash == nil {
			return protocolError("announce_peer: missing info_hash")
		}
		if !n.tok.valid(a.Token, from.Addr()) {
			return protocolError("announce_peer: bad token")
		}
		port := from.Port()
		if a.ImpliedPort == 0 { // BEP 5: "present and non-zero" means implied
			if a.Port == nil || *a.Port <= 0 || *a.Port > 65535 {
				return protocolError("announce_peer: bad port")
			}
			port = uint16(*a.Port)
		}
		n.store.addPeer(*a.InfoHash, netip.AddrPortFrom(from.Addr(), port), a.Seed == 1, now)
	case krpc.MethodSampleInfohashes:
		// BEP 51. The target only picks the nodes, which let a crawler walk
		// the keyspace; the sample is the same whatever it is.
		if a.Target == nil {
			return protocolError("sample_infohashes: missing target")
		}
		num, sample := n.store.samples(s.rng, now, SampleInterval, maxSamples)
		r.Interval = int(SampleInterval / time.Second)
		r.Num = num
		r.Samples = sample // non-nil even when empty: BEP 51 requires the key
		s.setNodes(r, n, *a.Target, wanted(a, from))
		if n.cfg.MaxAmplification > 0 {
			if r.Nodes != nil && r.Nodes6 != nil {
				s.fitNodes(q.T, familyOf(from.Addr()))
			}
			// Beside K nodes a full sample is more than the allowance, and
			// the transport would drop the whole answer: send what fits.
			r.Samples = r.Samples[:s.samplesThatFit(q.T)]
		}
	default:
		return &krpc.Msg{E: &krpc.Error{Code: krpc.ErrorCodeMethodUnknown, Msg: "method unknown"}}
	}
	return &s.reply
}

// samplesThatFit is how many of s.ret's samples the answer to a query with
// transaction ID tid can carry within krpc.AmplificationAllowance, the
// size an answer may always have. It encodes the answer without samples,
// as the transport will send it, into a buffer it keeps, so it costs no
// allocation once warm. The crawler still gets every node: they are what
// lets it walk the keyspace, and it comes back for more samples anyway.
func (s *server) samplesThatFit(tid string) int {
	r := &s.ret
	all := r.Samples
	r.Samples = all[:0]
	room := krpc.AmplificationAllowance - s.size(tid)
	r.Samples = all
	k := min(len(all), max(room, 0)/routing.IDLen)
	// The length prefix "0:" grows with the sample: "300:" is two bytes more.
	for k > 0 && k*routing.IDLen+digits(k*routing.IDLen)-1 > room {
		k--
	}
	return k
}

func digits(v int) int {
	d := 1
	for ; v >= 10; v /= 10 {
		d++
	}
	return d
}

func protocolError(msg string) *krpc.Msg {
	return &krpc.Msg{E: &krpc.Error{Code: krpc.ErrorCodeProtocol, Msg: msg}}
}

// wanted is the set of families (bit 1<<fam4, 1<<fam6) a find_node or
// get_peers answer carries: those BEP 32's want asks for, else the
// querier's own. Unknown entries are ignored, so a long want list costs
// no more than a short one.
func wanted(a *krpc.Args, from netip.AddrPort) int {
	set := 0
	for _, w := range a.Want {
		switch w {
		case "n4":
			set |= 1 << fam4
		case "n6":
			set |= 1 << fam6
		}
	}
	if set == 0 {
		set = 1 << familyOf(from.Addr())
	}
	return set
}

// serves reports whether our socket carries family f.
func (n *Node) serves(f int) bool {
	if f == fam4 {
		return n.is4 || !n.v6only
	}
	return !n.is4
}

// viewOf is the view that answers for family f: ours, or our sibling's
// when it holds the other socket; nil when no socket of ours carries f.
func (n *Node) viewOf(f int) *view {
	if n.serves(f) {
		return n.view.Load()
	}
	if sib := n.sib.Load(); sib != nil && sib.serves(f) {
		return sib.view.Load()
	}
	return nil
}

// setNodes fills in the K closest nodes we know to target of each family
// in fams, each family in its own key (BEP 32); a family with none gets
// no key.
func (s *server) setNodes(r *krpc.Return, n *Node, target routing.ID, fams int) {
	if v := n.viewOf(fam4); v != nil && fams&(1<<fam4) != 0 {
		if r.Nodes = v.closestOf(s.nodes[:0], target, routing.K, fam4); len(r.Nodes) == 0 {
			r.Nodes = nil
		}
	}
	if v := n.viewOf(fam6); v != nil && fams&(1<<fam6) != 0 {
		if r.Nodes6 = v.closestOf(s.nodes6[:0], target, routing.K, fam6); len(r.Nodes6) == 0 {
			r.Nodes6 = nil
		}
	}
}

// fitNodes, under an amplification bound, shortens the node list of the
// family the querier did not query from (own is its family) until the
// answer to transaction tid fits krpc.AmplificationAllowance: a querier
// that wants both families gets K of its own and as many of the other as
// fit, never an answer the transport would drop as too big.
func (s *server) fitNodes(tid string, own int) {
	r := &s.ret
	for {
		over := s.size(tid) - krpc.AmplificationAllowance
		if over <= 0 {
			return
		}
		switch {
		case own == fam4 && len(r.Nodes6) > 0:
			r.Nodes6 = r.Nodes6[:max(0, len(r.Nodes6)-(over+krpc.NodeInfo6Len-1)/krpc.NodeInfo6Len)]
		case own == fam6 && len(r.Nodes) > 0:
			r.Nodes = r.Nodes[:max(0, len(r.Nodes)-(over+krpc.NodeInfoLen-1)/krpc.NodeInfoLen)]
		default:
			return // our own family's K alone: what a BEP 5 answer always carries
		}
	}
}

// size is the encoded size of the answer in s to transaction tid.
func (s *server) size(tid string) int {
	m := s.reply
	m.T, m.V, m.Y = tid, Version, krpc.KindResponse
	s.sizeBuf = m.Append(s.sizeBuf[:0])
	return len(s.sizeBuf)
}
