//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package dht

import "syscall"

// sockV6Only reads a socket's IPV6_V6ONLY option; false if it cannot.
func sockV6Only(conn any) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	v := 0
	cerr := raw.Control(func(fd uintptr) {
		v, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY)
	})
	return cerr == nil && err == nil && v != 0
}
