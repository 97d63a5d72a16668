package dht

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"node/krpc"
	"node/routing"
)

// Peer store defaults. At the defaults the store holds at most about half a
// million peers, some tens of MiB, however many announces arrive.
const (
	DefaultMaxInfoHashes       = 4096
	DefaultMaxPeersPerInfoHash = 128
	DefaultPeerTTL             = 30 * time.Minute // peers re-announce every ~15 minutes
)

// Bounds on what one source (an IPv4 address, an IPv6 /64) may store, so
// that one host with a valid token cannot push the honest peers of a swarm
// out, nor flush the store. Re-announces are never limited.
const (
	// maxPeersPerSource is how many peers of one info-hash one source may
	// hold: a few clients behind one NAT fit, a fleet of ports does not.
	// Beyond it a new port takes the place of the source's oldest.
	maxPeersPerSource = 4
	// maxInsertsPerSource is how many new entries (a peer new to its
	// swarm, or a new swarm) one source may make per minute, in a burst or
	// spread out. An honest client announces a torrent to a node every
	// 15 minutes or so and few of its torrents land on any one node.
	maxInsertsPerSource = 32
	// maxTrackedSources bounds the table of insert allowances: a source
	// pushed out of it starts again with a full allowance, which a host
	// that has this many addresses has anyway.
	maxTrackedSources = 4096
)

// storedPeer is what the store keeps per announced peer: 32 bytes, with
// the address in compact form (an IPv6 zone, which a compact peer cannot
// carry anyway, is dropped).
type storedPeer struct {
	at   int64    // last announce, Unix nanoseconds, for the ttl
	ip   [16]byte // IPv4 as IPv4-mapped
	port uint16
	v4   bool
	seed bool // BEP 33: announced with seed=1, so scrapes count it as a seed
}

func (p *storedPeer) addr() netip.AddrPort {
	a := netip.AddrFrom16(p.ip)
	if p.v4 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, p.port)
}

// swarm is the peers of one info-hash, oldest announce first, and its
// place in the store's announce order.
type swarm struct {
	ih         routing.ID
	peers      []storedPeer
	prev, next *swarm // towards the most / least recently announced
}

// peerStore keeps the peers announced to us, bounded twice: the least
// recently announced info-hash is evicted past maxHashes, and the least
// recently announced peer of an info-hash past maxPeers. Entries older than
// ttl are dropped when read. It has its own lock: get_peers is answered on
// the socket's reader, announces too, and the status line reads counts.
// Swarms are small (maxPeers), so linear scans beat any per-peer index and
// keep a peer at 32 bytes.
type peerStore struct {
	mu         sync.Mutex
	hashes     map[routing.ID]*swarm
	newest     *swarm // the announce order: newest ... oldest
	oldest     *swarm
	maxHashes  int
	maxPeers   int
	ttl        time.Duration
	sampleKeys []routing.ID // scratch for samples
	// inserts is each recent source's allowance of new entries.
	inserts *simplelru.LRU[netip.Addr, *rate.Limiter]

	// The BEP 51 sample is kept for SampleInterval, so that hammering us
	// with sample_infohashes neither copies the key list each time nor
	// walks the store faster than the interval we advertise.
	sampleMu sync.Mutex
	sample   []routing.ID
	sampled  time.Time
}

func newPeerStore(maxHashes, maxPeers int, ttl time.Duration) *peerStore {
	if maxHashes <= 0 || maxPeers <= 0 {
		panic("dht: peer store bounds must be positive") // Config defaults rule it out
	}
	inserts, _ := simplelru.NewLRU[netip.Addr, *rate.Limiter](maxTrackedSources, nil) // fails only for a size <= 0
	return &peerStore{hashes: make(map[routing.ID]*swarm), maxHashes: maxHashes, maxPeers: maxPeers, ttl: ttl, inserts: inserts}
}

func (s *peerStore) add(ih routing.ID, p netip.AddrPort, now time.Time) bool {
	return s.addPeer(ih, p, false, now)
}

// addPeer stores p under ih and reports whether it did. A re-announce
// overwrites the seed flag, so a leecher that finished is counted as a
// seed from its next announce on. A re-announce, or a new port from a
// source that has its share of ih, displaces only that source's own
// entries and is always taken; anything else that could push out someone
// else (a new peer in a swarm, a new swarm) is charged to the source's
// insert rate, and dropped beyond it.
func (s *peerStore) addPeer(ih routing.ID, p netip.AddrPort, seed bool, now time.Time) bool {
	a := p.Addr()
	e := storedPeer{at: now.UnixNano(), ip: a.As16(), port: p.Port(), v4: a.Unmap().Is4(), seed: seed}
	if e.v4 {
		e.ip = a.Unmap().As16()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sw, ok := s.hashes[ih]
	if ok {
		same, own, oldestOwn := -1, 0, -1
		for i := range sw.peers {
			q := &sw.peers[i]
			if q.ip == e.ip && q.port == e.port && q.v4 == e.v4 {
				same = i
				break
			}
			if sameSource(q, &e) {
				if own++; oldestOwn < 0 {
					oldestOwn = i // peers are oldest first
				}
			}
		}
		switch {
		case same >= 0:
			sw.peers = append(sw.peers[:same], sw.peers[same+1:]...)
		case own >= maxPeersPerSource:
			sw.peers = append(sw.peers[:oldestOwn], sw.peers[oldestOwn+1:]...)
		case !s.charge(&e, now):
			return false
		case len(sw.peers) >= s.maxPeers:
			sw.peers = append(sw.peers[:0], sw.peers[1:]...)
		}
		s.unlink(sw)
	} else {
		if !s.charge(&e, now) {
			return false
		}
		if len(s.hashes) >= s.maxHashes {
			old := s.oldest
			s.unlink(old)
			delete(s.hashes, old.ih)
		}
		sw = &swarm{ih: ih}
		s.hashes[ih] = sw
	}
	s.pushNewest(sw)
	sw.peers = append(sw.peers, e)
	return true
}

// sameSource reports whether two peers have the same source for the
// bounds on sources: the IPv4 address, or the /64 of an IPv6 one, which a
// single host or customer usually holds whole.
func sameSource(a, b *storedPeer) bool {
	if a.v4 || b.v4 {
		return a.v4 == b.v4 && a.ip == b.ip
	}
	return [8]byte(a.ip[:8]) == [8]byte(b.ip[:8])
}

// charge takes one insert from e's source's allowance and reports whether
// there was one. s.mu must be held.
func (s *peerStore) charge(e *storedPeer, now time.Time) bool {
	k := netip.AddrFrom16(e.ip)
	if !e.v4 {
		p, _ := k.Prefix(64) // cannot fail for an IPv6 address
		k = p.Addr()
	}
	lim, ok := s.inserts.Get(k)
	if !ok {
		lim = rate.NewLimiter(rate.Every(time.Minute/maxInsertsPerSource), maxInsertsPerSource)
		s.inserts.Add(k, lim)
	}
	return lim.AllowN(now, 1)
}

func (s *peerStore) pushNewest(sw *swarm) {
	sw.prev, sw.next = nil, s.newest
	if s.newest != nil {
		s.newest.prev = sw
	}
	s.newest = sw
	if s.oldest == nil {
		s.oldest = sw
	}
}

func (s *peerStore) unlink(sw *swarm) {
	if sw.prev != nil {
		sw.prev.next = sw.next
	} else {
		s.newest = sw.next
	}
	if sw.next != nil {
		sw.next.prev = sw.prev
	} else {
		s.oldest = sw.prev
	}
	sw.prev, sw.next = nil, nil
}

// get returns up to max live peers of ih, most recently announced first.
func (s *peerStore) get(ih routing.ID, now time.Time, max int) []netip.AddrPort {
	return s.peers(ih, now, max, false)
}

// peers is get, leaving seeds out when noSeed is set (BEP 33 noseed: a
// seed has nothing to offer a seed). It returns nil when there are none.
func (s *peerStore) peers(ih routing.ID, now time.Time, max int, noSeed bool) []netip.AddrPort {
	return s.appendPeers(nil, ih, now, max, noSeed)
}

// appendPeers appends what peers returns to dst, so a caller with a
// reused buffer answers without allocating.
func (s *peerStore) appendPeers(dst []netip.AddrPort, ih routing.ID, now time.Time, max int, noSeed bool) []netip.AddrPort {
	if max <= 0 {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.live(ih, now)
	for i := len(ps) - 1; i >= 0 && max > 0; i-- {
		if !(noSeed && ps[i].seed) {
			dst = append(dst, ps[i].addr())
			max--
		}
	}
	return dst
}

// scrape returns BEP 33's filters over every live peer of ih, not just the
// ones a get_peers answer has room for: the filters are what tells the
// asker the swarm's size.
func (s *peerStore) scrape(ih routing.ID, now time.Time) (seeds, peers *krpc.Bloom) {
	seeds, peers = new(krpc.Bloom), new(krpc.Bloom)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.live(ih, now) {
		if p.seed {
			bloomInsert(seeds, p.addr().Addr())
		} else {
			bloomInsert(peers, p.addr().Addr())
		}
	}
	return seeds, peers
}

// live returns the live peers of ih, oldest first, after dropping the
// expired ones, and ih itself once it has none left. s.mu must be held;
// the slice is valid until it is released.
func (s *peerStore) live(ih routing.ID, now time.Time) []storedPeer {
	sw, ok := s.hashes[ih]
	if !ok {
		return nil
	}
	cutoff := now.UnixNano() - int64(s.ttl)
	n := 0
	for _, p := range sw.peers {
		if p.at >= cutoff {
			sw.peers[n] = p
			n++
		}
	}
	clear(sw.peers[n:])
	sw.peers = sw.peers[:n]
	if n == 0 {
		s.unlink(sw)
		delete(s.hashes, ih)
	}
	return sw.peers
}

// samples returns the number of info-hashes held and up to max of them
// chosen at random (BEP 51). The choice is redrawn once interval has passed,
// or sooner when the store has grown past what the last draw could hold, so
// a fresh node does not answer an empty sample for a whole interval.
// Info-hashes whose peers all expired but that no read has dropped yet can
// be sampled; the asker finds out with get_peers, as it must anyway.
func (s *peerStore) samples(r *rand.Rand, now time.Time, interval time.Duration, max int) (int, []routing.ID) {
	s.sampleMu.Lock()
	defer s.sampleMu.Unlock()
	s.mu.Lock()
	num := len(s.hashes)
	if now.Sub(s.sampled) >= interval || now.Before(s.sampled) || len(s.sample) < min(num, max) {
		keys := s.sampleKeys[:0]
		for ih := range s.hashes {
			keys = append(keys, ih)
		}
		s.sampleKeys = keys
		// A partial Fisher-Yates shuffle: the first max keys end up a
		// uniform sample without shuffling the rest.
		n := min(len(keys), max)
		for i := 0; i < n; i++ {
			j := i + r.IntN(len(keys)-i)
			keys[i], keys[j] = keys[j], keys[i]
		}
		s.sample = append(s.sample[:0], keys[:n]...)
		s.sampled = now
	}
	s.mu.Unlock()
	// A copy, never nil: the caller owns it, and sends it even when empty.
	return num, append(make([]routing.ID, 0, len(s.sample)), s.sample...)
}

// counts reports the number of info-hashes and of peers held.
func (s *peerStore) counts() (hashes, peers int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sw := range s.hashes {
		peers += len(sw.peers)
	}
	return len(s.hashes), peers
}
