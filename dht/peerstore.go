package dht

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

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
	return &peerStore{hashes: make(map[routing.ID]*swarm), maxHashes: maxHashes, maxPeers: maxPeers, ttl: ttl}
}

func (s *peerStore) add(ih routing.ID, p netip.AddrPort, now time.Time) {
	s.addPeer(ih, p, false, now)
}

// addPeer stores p under ih. A re-announce overwrites the seed flag, so a
// leecher that finished is counted as a seed from its next announce on.
func (s *peerStore) addPeer(ih routing.ID, p netip.AddrPort, seed bool, now time.Time) {
	a := p.Addr()
	e := storedPeer{at: now.UnixNano(), ip: a.As16(), port: p.Port(), v4: a.Unmap().Is4(), seed: seed}
	if e.v4 {
		e.ip = a.Unmap().As16()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sw, ok := s.hashes[ih]
	if ok {
		s.unlink(sw)
	} else {
		if len(s.hashes) >= s.maxHashes {
			old := s.oldest
			s.unlink(old)
			delete(s.hashes, old.ih)
		}
		sw = &swarm{ih: ih}
		s.hashes[ih] = sw
	}
	s.pushNewest(sw)
	for i := range sw.peers {
		if q := &sw.peers[i]; q.ip == e.ip && q.port == e.port && q.v4 == e.v4 {
			sw.peers = append(sw.peers[:i], sw.peers[i+1:]...)
			break
		}
	}
	if len(sw.peers) >= s.maxPeers {
		sw.peers = append(sw.peers[:0], sw.peers[1:]...)
	}
	sw.peers = append(sw.peers, e)
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
