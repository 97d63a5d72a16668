package dht

import (
	"net/netip"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"node/routing"
)

// Peer store defaults. At the defaults the store holds at most about half a
// million peers, some tens of MiB, however many announces arrive.
const (
	DefaultMaxInfoHashes       = 4096
	DefaultMaxPeersPerInfoHash = 128
	DefaultPeerTTL             = 30 * time.Minute // peers re-announce every ~15 minutes
)

// peerStore keeps the peers announced to us, bounded twice: the least
// recently announced info-hash is evicted past maxHashes, and the least
// recently announced peer of an info-hash past maxPeers. Entries older than
// ttl are dropped when read.
type peerStore struct {
	hashes   *lru.Cache[routing.ID, *lru.Cache[netip.AddrPort, time.Time]]
	maxPeers int
	ttl      time.Duration
}

func newPeerStore(maxHashes, maxPeers int, ttl time.Duration) *peerStore {
	c, err := lru.New[routing.ID, *lru.Cache[netip.AddrPort, time.Time]](maxHashes)
	if err != nil {
		panic(err) // only for a size <= 0, which Config defaults rule out
	}
	return &peerStore{hashes: c, maxPeers: maxPeers, ttl: ttl}
}

func (s *peerStore) add(ih routing.ID, p netip.AddrPort, now time.Time) {
	set, ok := s.hashes.Get(ih)
	if !ok {
		set, _ = lru.New[netip.AddrPort, time.Time](s.maxPeers)
		s.hashes.Add(ih, set)
	}
	set.Add(p, now)
}

// get returns up to max live peers of ih, most recently announced first.
func (s *peerStore) get(ih routing.ID, now time.Time, max int) []netip.AddrPort {
	set, ok := s.hashes.Peek(ih)
	if !ok {
		return nil
	}
	keys := set.Keys() // oldest first
	var out []netip.AddrPort
	for i := len(keys) - 1; i >= 0 && len(out) < max; i-- {
		at, ok := set.Peek(keys[i])
		if !ok {
			continue
		}
		if now.Sub(at) > s.ttl {
			set.Remove(keys[i])
			continue
		}
		out = append(out, keys[i])
	}
	if set.Len() == 0 {
		s.hashes.Remove(ih)
	}
	return out
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
