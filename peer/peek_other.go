//go:build !unix

package peer

import "net"

// hasPending cannot peek here: a connection is silent until its
// handshake's goroutine has read from it.
func hasPending(net.Conn) bool { return false }
