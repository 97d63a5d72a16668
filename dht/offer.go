package dht

import (
	"net/netip"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Offers of nodes learned outside the DHT (BEP 5 port messages) are
// pinged through the same bounded path as the table's own pings, within
// maxPings in flight, but hold at most maxOfferPings of them, so that
// the table's own verification and liveness pings always find room; the
// rest wait in a queue of maxOffers. A peer can send port messages as
// fast as it likes, from as many connections as it gets, so a source (an
// IPv4 address, an IPv6 /64) is pinged for an offer at most once per
// offerEvery, remembered for the last offerMemory sources.
const (
	maxOfferPings = maxPings / 4
	maxOffers     = 64
	offerMemory   = 1024
	offerEvery    = time.Minute
)

type offerEvent struct{ addr netip.AddrPort }

func (offerEvent) isEvent() {}

// OfferNode offers addr, a node learned outside the DHT such as from the
// BEP 5 port message of a BitTorrent peer: it is pinged, and joins the
// routing table if it answers. It never blocks: an offer that finds the
// node busy, its queue full or the IP offered within offerEvery is
// dropped, which costs the table nothing it cannot learn again.
func (n *Node) OfferNode(addr netip.AddrPort) {
	if n.closed.Load() {
		return
	}
	if h := n.half(addr.Addr()); h != nil {
		h.offer(addr)
	}
}

func (n *Node) offer(addr netip.AddrPort) {
	select {
	case n.events <- offerEvent{addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())}:
	default:
	}
}

// offers is the loop's queue of offered nodes waiting for a ping slot.
type offers struct {
	queue    []netip.AddrPort
	inflight map[netip.AddrPort]bool // pings started for offers
	recent   *simplelru.LRU[netip.Addr, time.Time]
}

// offerSource is what the memory of offers is keyed by: the IPv4 address,
// or the /64 of an IPv6 one, whose many addresses one host may hold.
func offerSource(a netip.Addr) netip.Addr {
	if a.Is4() {
		return a
	}
	p, _ := a.Prefix(64) // cannot fail for an IPv6 address
	return p.Addr()
}

func (n *Node) offered(addr netip.AddrPort, now time.Time) {
	if !n.usable(addr) || addr == n.Addr() {
		return
	}
	o := &n.offers
	if o.recent == nil {
		o.recent, _ = simplelru.NewLRU[netip.Addr, time.Time](offerMemory, nil)
	}
	src := offerSource(addr.Addr())
	if at, ok := o.recent.Get(src); ok && now.Sub(at) < offerEvery {
		return
	}
	if len(o.queue) >= maxOffers {
		return // the queue holds offers only while there is no slot
	}
	o.recent.Add(src, now)
	o.queue = append(o.queue, addr)
	n.pingOffers()
}

// pingOffers starts pings for queued offers while there are free slots,
// of maxOfferPings and of those strangers may take (see strangerRoom).
func (n *Node) pingOffers() {
	o := &n.offers
	if o.inflight == nil {
		o.inflight = make(map[netip.AddrPort]bool, maxOfferPings)
	}
	for len(o.queue) > 0 && n.strangerRoom(n.cfg.Now()) && len(o.inflight) < maxOfferPings {
		a := o.queue[0]
		o.queue[0] = netip.AddrPort{}
		o.queue = o.queue[1:]
		if !n.pinging[a] {
			n.ping(a)
			if n.pinging[a] {
				o.inflight[a] = true
			}
		}
	}
	if len(o.queue) == 0 {
		o.queue = nil // let the backing array go rather than creep forward
	}
}
