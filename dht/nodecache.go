package dht

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"node/krpc"
	"node/routing"
)

// DefaultNodeCacheSize is how many nodes the lookup cache remembers when
// Config.NodeCacheSize is zero: about 250 bytes each, 500 kB in all.
// Spread over the key space, 2048 nodes hold one within about 11 bits of
// prefix of any target, where the routing table's far buckets, K nodes
// each, hold one within about 3 (log2 K): some 8 bits, two or three
// lookup hops, nearer.
const DefaultNodeCacheSize = 2048

// nodeCache remembers the nodes that lookups have heard of (the nodes
// lists of answers, and the nodes that answered), most recently heard
// first, so that the next lookup can start from the ones nearest its
// target. The routing table keeps K nodes per bucket and is dense only
// near our own ID; a lookup for any other target starts from the K nodes
// of one far bucket and needs a round trip or two just to get near it.
// The cache is not the routing table: it holds unverified third-party
// claims, and nothing moves from it into the table except by answering a
// query, as any lookup candidate does. Safe for concurrent use.
type nodeCache struct {
	secure bool // BEP 42: keep out IDs that do not match their IP
	size   int

	mu    sync.Mutex
	lru   *simplelru.LRU[netip.AddrPort, *cacheSlot]
	slots []*cacheSlot // the LRU's members, densely, for scanning
}

type cacheSlot struct {
	c   routing.Contact
	idx int // position in slots
}

func newNodeCache(size int, secure bool) *nodeCache {
	nc := &nodeCache{secure: secure, size: size}
	if size <= 0 {
		return nc
	}
	// The eviction callback runs, under mu, for every removal, whether by
	// Remove or by Add pushing the oldest out, so slots always mirrors the
	// LRU.
	nc.lru, _ = simplelru.NewLRU(size, func(_ netip.AddrPort, s *cacheSlot) {
		last := len(nc.slots) - 1
		nc.slots[s.idx] = nc.slots[last]
		nc.slots[s.idx].idx = s.idx
		nc.slots[last] = nil
		nc.slots = nc.slots[:last]
	})
	return nc
}

// add records c as just heard of and reports whether it was new. A node's
// own answer and a third node's claim count the same: both only say which
// ID was last seen at Addr.
func (nc *nodeCache) add(c routing.Contact) bool { return nc.put(c, true) }

// addIfRoom records c only if it is new and the cache is not full: for
// what a stranger says of itself unasked (a querier's ID), which may be
// sent from many forged addresses, and so must neither push out the
// nodes our own lookups learnt nor change the ID cached for an address.
func (nc *nodeCache) addIfRoom(c routing.Contact) bool { return nc.put(c, false) }

func (nc *nodeCache) put(c routing.Contact, evict bool) bool {
	if nc.lru == nil || c.ID.IsZero() || !c.Addr.IsValid() || c.Addr.Port() == 0 {
		return false
	}
	ip := c.Addr.Addr()
	if nc.secure && !routing.BEP42Exempt(ip) && !routing.IDMatchesIP(c.ID, ip) {
		return false
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if !evict {
		if nc.lru.Contains(c.Addr) || nc.lru.Len() >= nc.size {
			return false
		}
	} else if s, ok := nc.lru.Get(c.Addr); ok {
		s.c.ID = c.ID
		return false
	}
	s := &cacheSlot{c: c, idx: len(nc.slots)}
	nc.slots = append(nc.slots, s)
	nc.lru.Add(c.Addr, s)
	return true
}

func (nc *nodeCache) enabled() bool { return nc.lru != nil }

// remove forgets the node at addr: it did not answer.
func (nc *nodeCache) remove(addr netip.AddrPort) {
	if nc.lru == nil {
		return
	}
	nc.mu.Lock()
	nc.lru.Remove(addr)
	nc.mu.Unlock()
}

func (nc *nodeCache) len() int {
	if nc.lru == nil {
		return 0
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return nc.lru.Len()
}

// closest returns up to k cached contacts nearest to target, nearest
// first. One pass with a small sorted buffer: a lookup asks for a few
// dozen of a few thousand.
func (nc *nodeCache) closest(target routing.ID, k int) []routing.Contact {
	if nc.lru == nil || k <= 0 {
		return nil
	}
	type cand struct {
		d routing.ID
		c routing.Contact
	}
	best := make([]cand, 0, k+1)
	nc.mu.Lock()
	for _, s := range nc.slots {
		d := s.c.ID.Distance(target)
		if len(best) == k && d.Cmp(best[k-1].d) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(best, d, func(e cand, d routing.ID) int { return e.d.Cmp(d) })
		best = slices.Insert(best, i, cand{d, s.c})
		if len(best) > k {
			best = best[:k]
		}
	}
	nc.mu.Unlock()
	out := make([]routing.Contact, len(best))
	for i, b := range best {
		out[i] = b.c
	}
	return out
}

// Soft timeout bounds: a query unanswered after softTimeout stops holding
// one of the lookup's alpha slots (its answer is still taken if it comes
// before the lookup ends), so one dead node costs a fraction of a round
// trip's worth of parallelism instead of QueryTimeout of it.
const (
	minSoftTimeout = 100 * time.Millisecond
	// initialRTT is the estimate before any answer was timed: a typical
	// Internet round trip to a DHT node.
	initialRTT = 250 * time.Millisecond
	// softRTTs caps the soft timeout at this many smoothed round trips.
	// Round trips to DHT nodes are heavy-tailed (each end's access
	// delay), so rttvar is large and srtt+4*rttvar comes to 2.5 to 5
	// typical round trips, for which a silent node (30% of the addresses
	// answers name) holds a slot while the lookup's path waits. Its
	// answer is still taken if it comes later, so a tighter hand-off
	// costs a few queries, not a lost answer.
	softRTTs = 2
)

// rttEstimator is a node-wide smoothed round-trip time of answered
// queries, as TCP keeps one (RFC 6298): srtt and rttvar, in nanoseconds.
type rttEstimator struct {
	mu     sync.Mutex
	srtt   time.Duration
	rttvar time.Duration
	soft   atomic.Int64 // srtt + 4*rttvar, read without the lock
}

func (e *rttEstimator) observe(rtt time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srtt == 0 {
		e.srtt, e.rttvar = rtt, rtt/2
	} else {
		diff := e.srtt - rtt
		if diff < 0 {
			diff = -diff
		}
		e.rttvar += (diff - e.rttvar) / 4
		e.srtt += (rtt - e.srtt) / 8
	}
	e.soft.Store(int64(min(e.srtt+4*e.rttvar, softRTTs*e.srtt)))
}

// softTimeout is when a query stops counting as in flight: srtt+4*rttvar
// but at most softRTTs*srtt, at least minSoftTimeout and at most half
// the hard timeout (0: krpc's default).
func (e *rttEstimator) softTimeout(hard time.Duration) time.Duration {
	if hard <= 0 {
		hard = krpc.DefaultTimeout
	}
	d := time.Duration(e.soft.Load())
	if d == 0 {
		d = min(initialRTT+4*initialRTT/2, softRTTs*initialRTT)
	}
	return min(max(d, minSoftTimeout), hard/2)
}
