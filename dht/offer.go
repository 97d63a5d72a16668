package dht

import (
	"net/netip"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Offers of nodes learned outside the DHT (BEP 5 port messages) are
// pinged through the same bounded path as the table's own pings: at most
// maxPings in flight, the rest waiting in a queue of maxOffers. A peer
// can send port messages as fast as it likes, from as many connections
// as it gets, so an IP is pinged for an offer at most once per
// offerEvery, remembered for the last offerMemory IPs.
const (
	maxOffers   = 64
	offerMemory = 1024
	offerEvery  = time.Minute
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
	select {
	case n.events <- offerEvent{addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())}:
	default:
	}
}

// offers is the loop's queue of offered nodes waiting for a ping slot.
type offers struct {
	queue  []netip.AddrPort
	recent *simplelru.LRU[netip.Addr, time.Time]
}

func (n *Node) offered(addr netip.AddrPort, now time.Time) {
	if !n.usable(addr) || addr == n.Addr() {
		return
	}
	o := &n.offers
	if o.recent == nil {
		o.recent, _ = simplelru.NewLRU[netip.Addr, time.Time](offerMemory, nil)
	}
	if at, ok := o.recent.Get(addr.Addr()); ok && now.Sub(at) < offerEvery {
		return
	}
	if len(n.pinging) >= maxPings && len(o.queue) >= maxOffers {
		return
	}
	o.recent.Add(addr.Addr(), now)
	o.queue = append(o.queue, addr)
	n.pingOffers()
}

// pingOffers starts pings for queued offers while there are free slots.
func (n *Node) pingOffers() {
	o := &n.offers
	for len(o.queue) > 0 && len(n.pinging) < maxPings {
		a := o.queue[0]
		o.queue[0] = netip.AddrPort{}
		o.queue = o.queue[1:]
		n.ping(a)
	}
	if len(o.queue) == 0 {
		o.queue = nil // let the backing array go rather than creep forward
	}
}
