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
