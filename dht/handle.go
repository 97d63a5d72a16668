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
	return &view{nodes: cs}
}

// server is the memory the socket's reader answers in. Only that
// goroutine touches it: the transport calls the handler from it alone, and
// encodes each answer before the next call.
type server struct {
	reply  krpc.Msg
	ret    krpc.Return
	ip     krpc.Addr
	near   [routing.K]routing.Contact
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
// query.
type noteCache struct {
	seed maphash.Seed
	sets [noteCacheSets][noteCacheWays]struct{ h, at uint64 }
}

const (
	noteCacheSets = 1024
	noteCacheWays = 4
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
	for _, w := range &nc.sets[h%noteCacheSets] {
		if w.h == h {
			return h, t-w.at >= uint64(queriedNoteEvery) || t < w.at
		}
	}
	return h, true
}

func (nc *noteCache) record(h uint64, now time.Time) {
	set := &nc.sets[h%noteCacheSets]
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
	set[victim] = struct{ h, at uint64 }{h, uint64(now.UnixNano())}
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
		s.setNodes(r, n.view.Load(), *a.Target)
	case krpc.MethodGetPeers:
		if a.InfoHash == nil {
			return protocolError("get_peers: missing info_hash")
		}
		r.Token = s.toks.issue(n.tok, from.Addr())
		if r.Values = n.store.appendPeers(s.values[:0], *a.InfoHash, now, n.cfg.MaxValues, a.NoSeed == 1); len(r.Values) == 0 {
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
			s.setNodes(r, n.view.Load(), *a.InfoHash)
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
		s.setNodes(r, n.view.Load(), *a.Target)
		if n.cfg.MaxAmplification > 0 {
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
	m := s.reply
	m.T, m.V, m.Y = tid, Version, krpc.KindResponse
	s.sizeBuf = m.Append(s.sizeBuf[:0])
	r.Samples = all
	room := krpc.AmplificationAllowance - len(s.sizeBuf)
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

// setNodes fills in the K closest nodes we know to target, each family in
// its own key (BEP 32); a family with none gets no key.
func (s *server) setNodes(r *krpc.Return, v *view, target routing.ID) {
	for _, c := range v.closest(s.near[:0], target, routing.K) {
		if c.Addr.Addr().Unmap().Is4() {
			if r.Nodes == nil {
				r.Nodes = s.nodes[:0]
			}
			r.Nodes = append(r.Nodes, c)
		} else {
			if r.Nodes6 == nil {
				r.Nodes6 = s.nodes6[:0]
			}
			r.Nodes6 = append(r.Nodes6, c)
		}
	}
}
