package peer

import (
	"context"
	"net/netip"

	"node/dht"
	"node/routing"
)

// DHT is what a Torrent asks of the DHT: peers for its info-hash, an
// announce of its port, and the hints its peers give (a BEP 5 port, a
// BEP 10 yourip). *dht.Node implements it; tests give a fake.
//
// The lookups' channel and results are dht's own types: Go matches a
// method by its exact signature, and restating them here would need an
// adapter around *dht.Node for nothing.
type DHT interface {
	// Addr is the DHT's UDP address; its port is the one a BEP 5 port
	// message tells peers, IPv6 ones aside when Addr6 is valid.
	Addr() netip.AddrPort
	// Addr6 is the IPv6 DHT socket's address when it runs beside Addr's
	// (BEP 32), else the zero value: its port, which may differ, is the
	// one IPv6 peers are told.
	Addr6() netip.AddrPort
	// GetPeersFrom sends each peer found for infoHash on peers, with the
	// node that named it, until the lookup ends; it does not close peers.
	GetPeersFrom(ctx context.Context, infoHash routing.ID, peers chan<- dht.FoundPeer) (dht.LookupStats, error)
	// AnnounceFrom is GetPeersFrom, then an announce of port to the
	// closest nodes that answered.
	AnnounceFrom(ctx context.Context, infoHash routing.ID, port int, peers chan<- dht.FoundPeer) (dht.AnnounceStats, error)
	// OfferNode suggests a node a peer named (BEP 5 port message); the
	// DHT decides whether it is worth a ping. It must not block.
	OfferNode(addr netip.AddrPort)
	// ReportExternalIP is a peer's vote (BEP 10 yourip) on our external
	// address. It must not block.
	ReportExternalIP(voter, ip netip.Addr)
}

var _ DHT = (*dht.Node)(nil)
