package dht

import "net"

// ipv6Only reports whether conn takes IPv6 datagrams alone: bound to an
// IPv6 address, or to [::] with IPV6_V6ONLY set (Go sets it for "udp6"; a
// "udp" socket on [::], the default, is dual-stack).
func ipv6Only(conn net.PacketConn) bool {
	a := localAddr(conn).Addr()
	switch {
	case !a.IsValid() || a.Is4() || a.Is4In6():
		return false
	case !a.IsUnspecified():
		return true
	}
	return sockV6Only(conn)
}
