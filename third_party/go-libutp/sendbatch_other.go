//go:build !linux

package utp

import "net"

// Elsewhere the queue is sent one write per datagram.
func newBatchConn(pc net.PacketConn) *batchConn { return &batchConn{pc: pc} }
