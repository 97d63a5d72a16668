//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package dht

// sockV6Only cannot read the socket option here; a socket on [::] is taken
// for dual-stack, so our ID derives from the IPv4 votes.
func sockV6Only(any) bool { return false }
