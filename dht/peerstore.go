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

// Bounds on one IPv6 /48, a site's usual allocation: 65536 /64s, so 65536
// sources to the bounds above.
const (
	// maxPeersPerNet48 is how many peers of one info-hash one /48 may
	// hold; beyond it a new one takes the place of the /48's oldest. So
	// one allocation cannot fill a swarm however many /64s it announces
	// from.
	maxPeersPerNet48 = 16
	// maxInsertsPerNet48 is how many new entries one /48 may make per
	// minute, its /64s together, so that it cannot flush the store.
	maxInsertsPerNet48 = 4 * maxInsertsPerSource
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
	// inserts is each recent source's allowance of new entries, and each
	// recent IPv6 /48's.
	inserts *simplelru.LRU[netip.Prefix, *rate.Limiter]
	// bySource is scratch for evict.
	bySource map[sourceKey]sourceCount

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
	inserts, _ := simplelru.NewLRU[netip.Prefix, *rate.Limiter](maxTrackedSources, nil) // fails only for a size <= 0
	return &peerStore{hashes: make(map[routing.ID]*swarm), maxHashes: maxHashes, maxPeers: maxPeers, ttl: ttl, inserts: inserts,
		bySource: make(map[sourceKey]sourceCount)}
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
// insert rate (and its /48's), and dropped beyond it. A /48 that has its
// share of ih displaces its own oldest. In a full swarm the new entry
// displaces one of the source that then holds the most, the oldest of
// those, so that many sources announcing at once displace each other
// before the swarm's lone peers.
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
		same, own, oldestOwn, net48, oldest48 := -1, 0, -1, 0, -1
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
			if sameNet48(q, &e) {
				if net48++; oldest48 < 0 {
					oldest48 = i
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
		case net48 >= maxPeersPerNet48:
			sw.peers = append(sw.peers[:oldest48], sw.peers[oldest48+1:]...)
		case len(sw.peers) >= s.maxPeers:
			i := s.evict(sw.peers, &e)
			sw.peers = append(sw.peers[:i], sw.peers[i+1:]...)
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

// sameNet48 reports whether two peers are of one IPv6 /48.
func sameNet48(a, b *storedPeer) bool {
	return !a.v4 && !b.v4 && [6]byte(a.ip[:6]) == [6]byte(b.ip[:6])
}

// sourceKey is a peer's source for sameSource, as a map key.
type sourceKey struct {
	ip [16]byte // the IPv4 address, or the /64
	v4 bool
}

func sourceOf(p *storedPeer) sourceKey {
	k := sourceKey{ip: p.ip, v4: p.v4}
	if !p.v4 {
		clear(k.ip[8:])
	}
	return k
}

// sourceCount is a source's entries in a swarm and its oldest one.
type sourceCount struct{ n, oldest int }

// evict picks the entry of full swarm ps that e, a new entry, displaces:
// the oldest of the source that holds the most, counting e. Ties go to
// the source with the oldest entry, so that e displaces the swarm's
// oldest peer unless some source holds more than others. s.mu must be
// held.
func (s *peerStore) evict(ps []storedPeer, e *storedPeer) int {
	clear(s.bySource)
	s.bySource[sourceOf(e)] = sourceCount{n: 1, oldest: len(ps)}
	best := sourceCount{oldest: len(ps)}
	for i := range ps {
		k := sourceOf(&ps[i])
		c, ok := s.bySource[k]
		if !ok {
			c.oldest = i // peers are oldest first
		} else if c.oldest == len(ps) {
			c.oldest = i // e's source: its oldest stored entry
		}
		c.n++
		s.bySource[k] = c
	}
	for _, c := range s.bySource {
		if c.oldest < len(ps) && (c.n > best.n || c.n == best.n && c.oldest < best.oldest) {
			best = c
		}
	}
	return best.oldest
}

// charge takes one insert from the allowances of e's source and, for
// IPv6, of its /48, and reports whether both had one. s.mu must be held.
func (s *peerStore) charge(e *storedPeer, now time.Time) bool {
	a := netip.AddrFrom16(e.ip)
	if e.v4 {
		return s.allowance(netip.PrefixFrom(a.Unmap(), 32), maxInsertsPerSource).AllowN(now, 1)
	}
	p64, _ := a.Prefix(64) // cannot fail for an IPv6 address
	p48, _ := a.Prefix(48)
	src, site := s.allowance(p64, maxInsertsPerSource), s.allowance(p48, maxInsertsPerNet48)
	if src.TokensAt(now) < 1 || site.TokensAt(now) < 1 {
		return false // neither pays for an entry not made
	}
	return src.AllowN(now, 1) && site.AllowN(now, 1)
}

// allowance is the insert allowance of p, of burst a minute's worth.
func (s *peerStore) allowance(p netip.Prefix, perMinute int) *rate.Limiter {
	lim, ok := s.inserts.Get(p)
	if !ok {
		lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(perMinute)), perMinute)
		s.inserts.Add(p, lim)
	}
	return lim
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
	return s.appendPeers(nil, ih, now, max, noSeed, 1<<fam4|1<<fam6)
}

// appendPeers appends what peers returns to dst, so a caller with a
// reused buffer answers without allocating, keeping only the peers of the
// families in the set fams (bits 1<<fam4, 1<<fam6): BEP 32 keeps each
// family's peers to the DHT of that family.
func (s *peerStore) appendPeers(dst []netip.AddrPort, ih routing.ID, now time.Time, max int, noSeed bool, fams int) []netip.AddrPort {
	if max <= 0 {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.live(ih, now)
	for i := len(ps) - 1; i >= 0 && max > 0; i-- {
		if a := ps[i].addr(); !(noSeed && ps[i].seed) && fams&(1<<familyOf(a.Addr())) != 0 {
			dst = append(dst, a)
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
