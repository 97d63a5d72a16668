package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"node/krpc"
	"node/routing"
)

// A dual-stack node (BEP 32) runs the IPv4 DHT and the IPv6 DHT side by
// side, as two Nodes, one per socket: each has its own routing table,
// BEP 42 votes and ID (the same ID at first, as BEP 32 asks, until the
// votes of a family give it one of its own), loop and lookups, and they
// share the peer store. The Node a caller holds is the IPv4 one; its
// public calls run on both and merge what they find, so that a caller
// (package peer) sees one node and one stream of peers of both families.

// newDual binds the two sockets of cfg and starts a Node on each.
func newDual(cfg Config) (*Node, error) {
	conn4, conn6 := cfg.Conn, cfg.Conn6
	var err4, err6 error
	if conn4 == nil {
		conn4, err4 = net.ListenPacket("udp4", cfg.Listen)
	}
	if conn6 == nil {
		listen6 := cfg.Listen6
		if listen6 == "" {
			listen6 = "[::]:0"
		}
		conn6, err6 = net.ListenPacket("udp6", listen6)
	}
	// A socket of the wrong family is the caller's mistake, not the
	// host's lack: no fallback.
	// A Conn6 on [::] that also takes IPv4 would serve IPv4 queriers from
	// the IPv6 table, beside the IPv4 socket.
	// (What we bind as udp6 is IPv6 only by construction, on every
	// platform.)
	if (err4 == nil && familyOf(localAddr(conn4).Addr()) != fam4) || (err6 == nil && familyOf(localAddr(conn6).Addr()) != fam6) ||
		(cfg.Conn6 != nil && !ipv6Only(conn6)) {
		for _, c := range []net.PacketConn{conn4, conn6} {
			if c != nil {
				c.Close()
			}
		}
		return nil, errors.New("dht: Conn (or Listen) must be IPv4 and Conn6 (or Listen6) IPv6 only (udp6, or IPV6_V6ONLY on [::])")
	}
	if cfg.SendRate > 0 && cfg.sendLim == nil {
		// One budget for the node, as for a node of one socket.
		cfg.sendLim = krpc.NewSendLimiter(cfg.SendRate, 0)
	}
	switch {
	case err4 != nil && err6 != nil:
		return nil, fmt.Errorf("dht: IPv4: %w; IPv6: %w", err4, err6)
	case err4 != nil:
		cfg.Logger.Warn("no IPv4 DHT socket; running on IPv6 alone", zap.Error(err4))
		return newNode(cfg, conn6, nil)
	case err6 != nil:
		cfg.Logger.Warn("no IPv6 DHT socket; running on IPv4 alone", zap.Error(err6))
		return newNode(cfg, conn4, nil)
	}
	n, err := newNode(cfg, conn4, nil)
	if err != nil {
		conn6.Close()
		return nil, err
	}
	h, err := newNode(cfg, conn6, n)
	if err != nil {
		n.closed.Store(true)
		n.stop()
		return nil, err
	}
	n.v6.Store(h)
	n.sib.Store(h)
	return n, nil
}

// half is the Node whose socket carries a's family, nil if none does.
func (n *Node) half(a netip.Addr) *Node {
	f := familyOf(a)
	if n.serves(f) {
		return n
	}
	if h := n.v6.Load(); h != nil && h.serves(f) {
		return h
	}
	return nil
}

// Addr6 is the IPv6 socket's address when the node runs one beside its
// IPv4 socket, else the zero value.
func (n *Node) Addr6() netip.AddrPort {
	if h := n.v6.Load(); h != nil {
		return h.Addr()
	}
	return netip.AddrPort{}
}

// ID6 is the IPv6 socket's node ID when the node runs one beside its IPv4
// socket (it differs from ID once BEP 42 gives each family its own), else
// the zero ID.
func (n *Node) ID6() routing.ID {
	if h := n.v6.Load(); h != nil {
		return h.ID()
	}
	return routing.ID{}
}

// Close saves the routing tables (if StateDir is set), stops every
// goroutine the node started and closes its sockets.
func (n *Node) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	var saveErr error
	if n.cfg.StateDir != "" {
		saveErr = n.Save()
	}
	err := n.stop()
	if h := n.v6.Load(); h != nil {
		h.closed.Store(true)
		err = errors.Join(err, h.stop())
	}
	if n.stateLock != nil {
		n.stateLock.Close() // after the save: the next process may load it now
	}
	return errors.Join(saveErr, err)
}

// Stats returns a snapshot; it is cheap enough for a periodic status line.
func (n *Node) Stats(ctx context.Context) (Stats, error) {
	s, err := n.stats(ctx)
	if err != nil {
		return s, err
	}
	if h := n.v6.Load(); h != nil {
		s6, err := h.stats(ctx)
		if err != nil {
			return s, err
		}
		s.V6 = &s6
	}
	return s, nil
}

// Entries returns the routing tables' entries, the IPv4 table's first.
func (n *Node) Entries(ctx context.Context) ([]routing.Entry, error) {
	es, err := n.entries(ctx)
	if h := n.v6.Load(); h != nil && err == nil {
		var es6 []routing.Entry
		es6, err = h.entries(ctx)
		es = append(es, es6...)
	}
	return es, err
}

// Ping sends a ping to addr at once, from the socket of its family, and
// waits for the answer; a node that answers is offered to the routing
// table. Addresses that strangers can send in bulk, such as BEP 5 port
// messages, go through OfferNode instead, which bounds the pings they
// cost.
func (n *Node) Ping(ctx context.Context, addr netip.AddrPort) (routing.ID, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	h := n.half(addr.Addr())
	if h == nil {
		return routing.ID{}, fmt.Errorf("dht: no socket for %v's address family", addr)
	}
	return h.pingNow(ctx, addr)
}

// Bootstrap joins the network: it resolves the configured bootstrap
// addresses and runs a find_node lookup for our own ID through them and
// through the nodes saved by the last run, on each socket with the
// addresses of its family. It returns the number of nodes in the routing
// tables afterwards, or an error if nobody answered on either socket.
func (n *Node) Bootstrap(ctx context.Context) (int, error) {
	h := n.v6.Load()
	if h == nil {
		return n.bootstrap(ctx)
	}
	var (
		c4, c6 int
		e4, e6 error
		wg     sync.WaitGroup
	)
	wg.Go(func() { c4, e4 = n.bootstrap(ctx) })
	wg.Go(func() { c6, e6 = h.bootstrap(ctx) })
	wg.Wait()
	// A family with no entry point of its own may have heard of nodes in
	// the other's answers (BEP 32 want): one more try from those.
	if e6 != nil && e4 == nil && h.cache.len() > 0 && ctx.Err() == nil {
		c6, e6 = h.bootstrap(ctx)
	}
	if e4 != nil && e6 == nil && n.cache.len() > 0 && ctx.Err() == nil {
		c4, e4 = n.bootstrap(ctx)
	}
	if e4 != nil && e6 != nil {
		return 0, errors.Join(e4, e6)
	}
	return c4 + c6, nil
}

// FindNode runs an iterative find_node lookup on each socket and returns
// the K closest nodes to target of each family that answered, nearest
// first, the IPv4 ones first.
func (n *Node) FindNode(ctx context.Context, target routing.ID) ([]routing.Contact, LookupStats, error) {
	h := n.v6.Load()
	if h == nil {
		return n.findNode(ctx, target)
	}
	var (
		cs4, cs6 []routing.Contact
		s4, s6   LookupStats
		e4, e6   error
		wg       sync.WaitGroup
	)
	wg.Go(func() { cs4, s4, e4 = n.findNode(ctx, target) })
	wg.Go(func() { cs6, s6, e6 = h.findNode(ctx, target) })
	wg.Wait()
	return append(cs4, cs6...), mergeStats(s4, s6, s4.Peers+s6.Peers), lookupErr(ctx, e4, e6)
}

// GetPeers runs an iterative get_peers lookup for infoHash, on each socket
// at once, sending each distinct peer to peers as soon as it arrives
// (peers may be nil to only count them). It returns when the K closest
// nodes of each family have answered or ctx is done; it does not close
// peers.
func (n *Node) GetPeers(ctx context.Context, infoHash routing.ID, peers chan<- netip.AddrPort) (LookupStats, error) {
	h := n.v6.Load()
	if h == nil {
		return n.getPeers(ctx, infoHash, peers)
	}
	s4, s6, distinct, e4, e6 := both(ctx, n, h, peers, func(p netip.AddrPort) netip.AddrPort { return p }, LookupStats.later,
		func(x *Node, ch chan<- netip.AddrPort) (LookupStats, error) { return x.getPeers(ctx, infoHash, ch) })
	return mergeStats(s4, s6, distinct), lookupErr(ctx, e4, e6)
}

// GetPeersFrom is GetPeers, with the node that gave each peer. A peer
// given by several nodes is sent once, with the first.
func (n *Node) GetPeersFrom(ctx context.Context, infoHash routing.ID, peers chan<- FoundPeer) (LookupStats, error) {
	h := n.v6.Load()
	if h == nil {
		return n.getPeersFrom(ctx, infoHash, peers)
	}
	s4, s6, distinct, e4, e6 := both(ctx, n, h, peers, func(p FoundPeer) netip.AddrPort { return p.Addr }, LookupStats.later,
		func(x *Node, ch chan<- FoundPeer) (LookupStats, error) { return x.getPeersFrom(ctx, infoHash, ch) })
	return mergeStats(s4, s6, distinct), lookupErr(ctx, e4, e6)
}

// Announce tells the DHT that we serve infoHash on TCP port: a get_peers
// lookup on each socket (streaming the distinct peers found to peers,
// which may be nil), then announce_peer, with the token each gave, to the
// K closest nodes of each family that answered. Port 0 announces with
// implied_port (BEP 5), so the nodes store the source port of our UDP
// packets.
func (n *Node) Announce(ctx context.Context, infoHash routing.ID, port int, peers chan<- netip.AddrPort) (AnnounceStats, error) {
	h := n.v6.Load()
	if h == nil {
		return n.announcePeers(ctx, infoHash, port, peers)
	}
	s4, s6, distinct, e4, e6 := both(ctx, n, h, peers, func(p netip.AddrPort) netip.AddrPort { return p }, AnnounceStats.later,
		func(x *Node, ch chan<- netip.AddrPort) (AnnounceStats, error) {
			return x.announcePeers(ctx, infoHash, port, ch)
		})
	return mergeAnnounce(ctx, s4, s6, e4, e6, distinct)
}

// AnnounceFrom is Announce, with the node that gave each peer found (see
// GetPeersFrom).
func (n *Node) AnnounceFrom(ctx context.Context, infoHash routing.ID, port int, peers chan<- FoundPeer) (AnnounceStats, error) {
	h := n.v6.Load()
	if h == nil {
		return n.announceFrom(ctx, infoHash, port, peers)
	}
	s4, s6, distinct, e4, e6 := both(ctx, n, h, peers, func(p FoundPeer) netip.AddrPort { return p.Addr }, AnnounceStats.later,
		func(x *Node, ch chan<- FoundPeer) (AnnounceStats, error) {
			return x.announceFrom(ctx, infoHash, port, ch)
		})
	return mergeAnnounce(ctx, s4, s6, e4, e6, distinct)
}

// both runs f on the two Nodes at once, each sending what it finds to a
// channel that is merged into out (nil: nowhere), each peer (by key)
// once. It returns each Node's result and how many distinct peers they
// found together; later shifts a result's times by how late a retry of
// it started, so that they count from the call's start.
func both[S any, T any](ctx context.Context, n4, n6 *Node, out chan<- T, key func(T) netip.AddrPort,
	later func(S, time.Duration) S, f func(*Node, chan<- T) (S, error)) (s4, s6 S, distinct int, e4, e6 error) {
	start := time.Now()
	mid := make(chan T)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Bounded as each lookup's own set of peers found is.
		seen := make(map[netip.AddrPort]bool)
		for p := range mid {
			if k := key(p); !seen[k] {
				seen[k] = true
				distinct++
				if out != nil {
					select {
					case out <- p:
					case <-ctx.Done():
					}
				}
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Go(func() { s4, e4 = f(n4, mid) })
	wg.Go(func() { s6, e6 = f(n6, mid) })
	wg.Wait()
	// A family that had no one to ask may have heard of nodes in the
	// other's answers (BEP 32 want, see sibHungry): one more try, so that
	// the first lookup of a node that joined through one family already
	// covers both.
	if errors.Is(e4, ErrNoResponse) && e6 == nil && n4.cache.len() > 0 && ctx.Err() == nil {
		late := time.Since(start)
		s4, e4 = f(n4, mid)
		s4 = later(s4, late)
	}
	if errors.Is(e6, ErrNoResponse) && e4 == nil && n6.cache.len() > 0 && ctx.Err() == nil {
		late := time.Since(start)
		s6, e6 = f(n6, mid)
		s6 = later(s6, late)
	}
	close(mid)
	<-done
	return s4, s6, distinct, e4, e6
}

// mergeStats adds up two lookups run side by side; peers is how many
// distinct peers they found together.
func mergeStats(a, b LookupStats, peers int) LookupStats {
	first := a.FirstPeer
	if first == 0 || (b.FirstPeer != 0 && b.FirstPeer < first) {
		first = b.FirstPeer
	}
	return LookupStats{
		Queries:   a.Queries + b.Queries,
		Responses: a.Responses + b.Responses,
		Peers:     peers,
		FirstPeer: first,
		Duration:  max(a.Duration, b.Duration),
		Slow:      a.Slow + b.Slow,
		Disowned:  a.Disowned + b.Disowned,
		Overtaken: a.Overtaken + b.Overtaken,
	}
}

// later is s as seen from d before its lookup started.
func (s LookupStats) later(d time.Duration) LookupStats {
	if s.FirstPeer != 0 {
		s.FirstPeer += d
	}
	s.Duration += d
	return s
}

func (s AnnounceStats) later(d time.Duration) AnnounceStats {
	s.Lookup = s.Lookup.later(d)
	return s
}

// lookupErr is the outcome of two lookups run side by side: one that
// succeeded is enough.
func lookupErr(ctx context.Context, e4, e6 error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case e4 == nil || e6 == nil:
		return nil
	}
	return errors.Join(e4, e6)
}

func mergeAnnounce(ctx context.Context, a, b AnnounceStats, e4, e6 error, distinct int) (AnnounceStats, error) {
	st := AnnounceStats{Lookup: mergeStats(a.Lookup, b.Lookup, distinct), Announced: a.Announced + b.Announced}
	switch {
	case ctx.Err() != nil:
		return st, ctx.Err()
	case st.Announced == 0:
		return st, errors.Join(e4, e6)
	}
	return st, nil
}
