//go:build unix

package peer

import (
	"net"
	"syscall"
)

// hasPending reports whether the peer's bytes are waiting in nc's
// receive buffer, unread: a peek that neither blocks nor consumes them.
// False when nc is not a socket (a uTP connection).
func hasPending(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	n := 0
	// Control, not Read: Read waits for the read lock, which the
	// handshake's goroutine holds while its own read blocks.
	_ = rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}
