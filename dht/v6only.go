package dht

import "net"

// ipv6Only reports whether conn takes IPv6 datagrams alone: bound to an
// IPv6 address, or to [::] with IPV6_V6ONLY set (Go sets it for "udp6"; a
// "udp" socket on [::], the default, is dual-stack).
//
// A conn that is not a socket of its own (the view of a socket shared
// with uTP) answers for itself through IPv6Only.
func ipv6Only(conn net.PacketConn) bool {
	if c, ok := conn.(interface{ IPv6Only() bool }); ok {
		return c.IPv6Only()
	}
	a := localAddr(conn).Addr()
	switch {
	case !a.IsValid() || a.Is4() || a.Is4In6():
		return false
	case !a.IsUnspecified():
		return true
	}
	return sockV6Only(conn)
}
