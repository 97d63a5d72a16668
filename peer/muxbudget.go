package peer

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of a Mux's handshake budget beyond maxMuxHandshakes and
// maxConnsPerIP. The Mux serves every torrent of the process, so a
// slowloris that fills its budget would cut every torrent off at once:
// a full budget makes room by evicting the handshake least likely to be
// honest rather than refusing the newcomer, and no network of addresses
// holds more than its share.
const (
	// maxHandshakesPerNet bounds the handshakes in progress from one
	// IPv4 /24 or IPv6 /48 (netKey): one site's prefix, where a single
	// host has 65536 /64s, each its own maxConnsPerIP. Honest handshakes
	// take a round trip or two, so even a busy network seldom has more
	// than a few in flight.
	maxHandshakesPerNet = 16
	// firstBytesTimeout is how long an incoming connection may stay
	// silent: BitTorrent and MSE initiators both send at once (their
	// handshake, or their Diffie-Hellman key), so a connection that has
	// sent nothing after this is holding a slot, and is closed.
	firstBytesTimeout = 3 * time.Second
	// muxEvictAfter is the age from which a handshake that has sent
	// something may be evicted, if it has then been silent this long or
	// has averaged under muxMinHandshakeRate: an honest peer never waits
	// on us longer than a round trip.
	muxEvictAfter = time.Second
	// muxMinHandshakeRate (bytes a second, averaged since the accept) is
	// what a handshake older than muxEvictAfter must keep up not to be
	// evictable: a plaintext handshake is 68 bytes, an MSE one over 150,
	// each sent in a round trip or two; a drip of a byte a second is far
	// below.
	muxMinHandshakeRate = 32
	// muxEvictedFor is how long an address (ipKey) whose handshake was
	// evicted may not evict another: a slowloris reconnects as soon as
	// it is evicted, and each reconnection evicting the oldest silent
	// handshake in turn churned a full network's slots so fast that an
	// honest MSE initiator, silent while it made its key, was evicted
	// within milliseconds. It is refused instead while the scope is
	// full; an honest peer's first connection is never from such an
	// address. maxEvictedAddrs bounds the addresses remembered.
	muxEvictedFor   = 10 * time.Second
	maxEvictedAddrs = 4096
)

// netKey is the network a address belongs to for maxHandshakesPerNet:
// its IPv4 /24 or IPv6 /48.
func netKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// muxBudget counts a Mux's incoming handshakes in progress over one
// transport: at most max over all, maxHandshakesPerNet per netKey and
// maxConnsPerIP per ipKey. When one of them is full, a newcomer takes
// the place of the evictable handshake in that scope that has been
// silent longest (see evictable), and is refused only if there is none.
type muxBudget struct {
	max    int
	mu     sync.Mutex
	total  int
	perIP  map[netip.Prefix]int
	perNet map[netip.Prefix]int
	live   map[*hsEntry]struct{}
	// evicted are the ipKeys whose handshakes were evicted lately (see
	// muxEvictedFor), as addresses of port 0.
	evicted recentAddrs
}

// hsEntry is one handshake a muxBudget counts.
type hsEntry struct {
	nc    net.Conn // closed when it is evicted; nil in unit tests
	k, n  netip.Prefix
	start time.Time
	bytes atomic.Int64 // read from the peer so far
	last  atomic.Int64 // UnixNano of the last read that returned bytes; 0: none
	gone  bool         // no longer counted (under muxBudget.mu)
	state atomic.Int32 // entryLive, entryEvicted or entryHanded
}

const (
	entryLive    = iota
	entryEvicted // closed to make room for another
	entryHanded  // handed to its torrent: no longer the Mux's to close
)

// claim marks e handed to its torrent, unless it was evicted first.
func (e *hsEntry) claim() bool {
	return e == nil || e.state.CompareAndSwap(entryLive, entryHanded)
}

// read records n bytes from the peer at now.
func (e *hsEntry) read(n int, now time.Time) {
	if n > 0 {
		e.bytes.Add(int64(n))
		e.last.Store(now.UnixNano())
	}
}

// idle is how long e has sent nothing: since its accept if it never has.
func (e *hsEntry) idle(now time.Time) time.Duration {
	if l := e.last.Load(); l != 0 {
		return now.Sub(time.Unix(0, l))
	}
	return now.Sub(e.start)
}

// evictable says whether e may make room for a newcomer: it has sent
// nothing yet (an honest initiator's bytes are already on their way
// when we accept it), or it is older than muxEvictAfter and has been
// silent that long or is slower than muxMinHandshakeRate.
func (e *hsEntry) evictable(now time.Time) bool {
	b := e.bytes.Load()
	if b == 0 {
		return true
	}
	age := now.Sub(e.start)
	if age < muxEvictAfter {
		return false
	}
	return e.idle(now) >= muxEvictAfter || float64(b) < muxMinHandshakeRate*age.Seconds()
}

// admit counts a new handshake from a, on nc. When a bound is full it
// evicts a handshake in the narrowest full scope (one eviction frees a
// slot in every wider scope, which contains it) and returns it as victim
// for the caller to close; ok is false if no handshake there is
// evictable, and the newcomer must be refused.
func (b *muxBudget) admit(nc net.Conn, a netip.Addr, now time.Time) (e, victim *hsEntry, ok bool) {
	k, n := ipKey(a), netKey(a)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live == nil {
		b.live = make(map[*hsEntry]struct{})
		b.perIP = make(map[netip.Prefix]int)
		b.perNet = make(map[netip.Prefix]int)
	}
	var in func(*hsEntry) bool
	switch {
	case b.perIP[k] >= maxConnsPerIP:
		in = func(o *hsEntry) bool { return o.k == k }
	case b.perNet[n] >= maxHandshakesPerNet:
		in = func(o *hsEntry) bool { return o.n == n }
	case b.total >= b.max:
		in = func(*hsEntry) bool { return true }
	}
	if in != nil && b.evicted.has(netip.AddrPortFrom(k.Addr(), 0), now, muxEvictedFor) {
		return nil, nil, false
	}
	for in != nil {
		var worst time.Duration
		for o := range b.live {
			if !in(o) || o.state.Load() != entryLive || !o.evictable(now) {
				continue
			}
			if d := o.idle(now); victim == nil || d > worst ||
				d == worst && o.bytes.Load() < victim.bytes.Load() {
				victim, worst = o, d
			}
		}
		if victim == nil {
			return nil, nil, false
		}
		if victim.bytes.Load() == 0 && victim.nc != nil && hasPending(victim.nc) {
			// Its bytes came and its goroutine has not read them yet:
			// under a flood of connections, it is the honest one. Counted
			// as a byte, which takes it out of the running.
			victim.read(1, now)
			victim = nil
			continue
		}
		// Lost to claim: it is being handed over, and is skipped on
		// the next pass.
		if victim.state.CompareAndSwap(entryLive, entryEvicted) {
			b.removeLocked(victim)
			b.evicted.add(netip.AddrPortFrom(victim.k.Addr(), 0), now, maxEvictedAddrs)
			break
		}
		victim = nil
	}
	e = &hsEntry{nc: nc, k: k, n: n, start: now}
	b.live[e] = struct{}{}
	b.total++
	b.perIP[k]++
	b.perNet[n]++
	return e, victim, true
}

// done stops counting e; for an evicted e it was already.
func (b *muxBudget) done(e *hsEntry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(e)
}

func (b *muxBudget) removeLocked(e *hsEntry) {
	if e.gone {
		return
	}
	e.gone = true
	delete(b.live, e)
	b.total--
	if b.perIP[e.k]--; b.perIP[e.k] <= 0 {
		delete(b.perIP, e.k)
	}
	if b.perNet[e.n]--; b.perNet[e.n] <= 0 {
		delete(b.perNet, e.n)
	}
}

// meteredConn records on its hsEntry what the peer sends during the
// handshake.
type meteredConn struct {
	net.Conn
	e *hsEntry
}

func (c *meteredConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.e.read(n, time.Now())
	return n, err
}
