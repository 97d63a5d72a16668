package utp

import (
	"errors"
	"net"
	"net/netip"
)

// ErrUnavailable: this binary was built without cgo, which libutp needs.
var ErrUnavailable = errors.New("uTP is not available: built without cgo")

const (
	// MaxInbound bounds the incoming uTP connections open at once on one
	// socket: accepted and not yet closed. The torrent keeps far fewer
	// (its connection limit, its pending handshakes); this bounds what a
	// flood can hold before the torrent refuses it.
	MaxInbound = 256
	// AcceptRate and AcceptBurst bound how fast new incoming uTP
	// connections are admitted: each admitted SYN costs a libutp socket
	// that lingers for seconds after it is closed, and a SYN costs its
	// sender one datagram from any address. libtorrent's default accepts
	// a few new connections per second per torrent; 50 per second is far
	// above what a swarm of honest peers needs.
	AcceptRate  = 50
	AcceptBurst = 100
	// SourceAcceptRate and SourceAcceptBurst bound the SYNs admitted
	// from one source, an IPv4 /24 or an IPv6 /64 (what one host or one
	// hoster's customer commands), before the socket-wide AcceptRate:
	// one host flooding SYNs takes at most this share of AcceptRate and
	// leaves the rest to the others. Honest peers behind one address
	// open a few connections a minute.
	SourceAcceptRate  = 10
	SourceAcceptBurst = 20
	// MaxSourceBuckets bounds the sources whose SYN budgets are tracked.
	// When it is reached the idle ones (their bucket full) are forgotten,
	// and if none are idle all are: SYNs from that many sources at once
	// are beyond what per-source budgets can sort out, and AcceptRate
	// still holds.
	MaxSourceBuckets = 4096
)

// addrPort turns a UDP net.Addr into a netip.AddrPort, IPv4 unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if ua, ok := a.(*net.UDPAddr); ok {
		ap = ua.AddrPort()
	} else if a != nil {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
