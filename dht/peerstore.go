package dht

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

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

// peerEntry is what the store keeps per announced peer.
type peerEntry struct {
	at   time.Time // last announce, for the ttl
	seed bool      // BEP 33: announced with seed=1, so scrapes count it as a seed
}

// peerStore keeps the peers announced to us, bounded twice: the least
// recently announced info-hash is evicted past maxHashes, and the least
// recently announced peer of an info-hash past maxPeers. Entries older than
// ttl are dropped when read.
type peerStore struct {
	hashes   *lru.Cache[routing.ID, *lru.Cache[netip.AddrPort, peerEntry]]
	maxPeers int
	ttl      time.Duration

	// The BEP 51 sample is kept for SampleInterval, so that hammering us
	// with sample_infohashes neither copies the key list each time nor
	// walks the store faster than the interval we advertise.
	sampleMu sync.Mutex
	sample   []routing.ID
	sampled  time.Time
}

func newPeerStore(maxHashes, maxPeers int, ttl time.Duration) *peerStore {
	c, err := lru.New[routing.ID, *lru.Cache[netip.AddrPort, peerEntry]](maxHashes)
	if err != nil {
		panic(err) // only for a size <= 0, which Config defaults rule out
	}
	return &peerStore{hashes: c, maxPeers: maxPeers, ttl: ttl}
}

func (s *peerStore) add(ih routing.ID, p netip.AddrPort, now time.Time) {
	s.addPeer(ih, p, false, now)
}

// addPeer stores p under ih. A re-announce overwrites the seed flag, so a
// leecher that finished is counted as a seed from its next announce on.
func (s *peerStore) addPeer(ih routing.ID, p netip.AddrPort, seed bool, now time.Time) {
	set, ok := s.hashes.Get(ih)
	if !ok {
		set, _ = lru.New[netip.AddrPort, peerEntry](s.maxPeers)
		s.hashes.Add(ih, set)
	}
	set.Add(p, peerEntry{at: now, seed: seed})
}

// get returns up to max live peers of ih, most recently announced first.
func (s *peerStore) get(ih routing.ID, now time.Time, max int) []netip.AddrPort {
	return s.peers(ih, now, max, false)
}

// peers is get, leaving seeds out when noSeed is set (BEP 33 noseed: a
// seed has nothing to offer a seed).
func (s *peerStore) peers(ih routing.ID, now time.Time, max int, noSeed bool) []netip.AddrPort {
	var out []netip.AddrPort
	if max <= 0 {
		return out
	}
	s.live(ih, now, func(p netip.AddrPort, e peerEntry) bool {
		if !(noSeed && e.seed) {
			out = append(out, p)
		}
		return len(out) < max
	})
	return out
}

// scrape returns BEP 33's filters over every live peer of ih, not just the
// ones a get_peers answer has room for: the filters are what tells the
// asker the swarm's size.
func (s *peerStore) scrape(ih routing.ID, now time.Time) (seeds, peers *krpc.Bloom) {
	seeds, peers = new(krpc.Bloom), new(krpc.Bloom)
	s.live(ih, now, func(p netip.AddrPort, e peerEntry) bool {
		if e.seed {
			bloomInsert(seeds, p.Addr())
		} else {
			bloomInsert(peers, p.Addr())
		}
		return true
	})
	return seeds, peers
}

// live calls f for the live peers of ih, most recently announced first,
// until f returns false. Expired peers met on the way are removed, and ih
// itself once it has none left.
func (s *peerStore) live(ih routing.ID, now time.Time, f func(netip.AddrPort, peerEntry) bool) {
	set, ok := s.hashes.Peek(ih)
	if !ok {
		return
	}
	keys := set.Keys() // oldest first
	for i := len(keys) - 1; i >= 0; i-- {
		e, ok := set.Peek(keys[i])
		if !ok {
			continue
		}
		if now.Sub(e.at) > s.ttl {
			set.Remove(keys[i])
			continue
		}
		if !f(keys[i], e) {
			break
		}
	}
	if set.Len() == 0 {
		s.hashes.Remove(ih)
	}
}

// samples returns the number of info-hashes held and up to max of them
// chosen at random (BEP 51). The choice is redrawn once interval has passed,
// or sooner when the store has grown past what the last draw could hold, so
// a fresh node does not answer an empty sample for a whole interval.
// Info-hashes whose peers all expired but that no read has dropped yet can
// be sampled; the asker finds out with get_peers, as it must anyway.
func (s *peerStore) samples(r *rand.Rand, now time.Time, interval time.Duration, max int) (int, []routing.ID) {
	num := s.hashes.Len()
	s.sampleMu.Lock()
	defer s.sampleMu.Unlock()
	if now.Sub(s.sampled) >= interval || now.Before(s.sampled) || len(s.sample) < min(num, max) {
		keys := s.hashes.Keys()
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
	// A copy, never nil: the caller owns it, and sends it even when empty.
	return num, append(make([]routing.ID, 0, len(s.sample)), s.sample...)
}

// counts reports the number of info-hashes and of peers held.
func (s *peerStore) counts() (hashes, peers int) {
	for _, ih := range s.hashes.Keys() {
		if set, ok := s.hashes.Peek(ih); ok {
			hashes++
			peers += set.Len()
		}
	}
	return hashes, peers
}
