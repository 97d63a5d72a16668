//go:build !linux

package utp

import "net"

func newRecvBatch(pc net.PacketConn) recvBatch { return newMmsgReader(pc) }
