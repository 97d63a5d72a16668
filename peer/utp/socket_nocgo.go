//go:build !cgo

package utp

import (
	"context"
	"net"
	"net/netip"
)

// Available reports whether this binary can speak uTP.
const Available = false

// Socket is unavailable without cgo: Listen always fails.
type Socket struct{}

// Listen fails with ErrUnavailable.
func Listen(network, addr string) (*Socket, error) { return nil, ErrUnavailable }

func (s *Socket) Addr() netip.AddrPort { return netip.AddrPort{} }

func (s *Socket) Dial(context.Context, netip.AddrPort) (net.Conn, error) {
	return nil, ErrUnavailable
}

func (s *Socket) Listener() net.Listener     { return nil }
func (s *Socket) PacketConn() net.PacketConn { return nil }
func (s *Socket) Refused() int64             { return 0 }
func (s *Socket) Inbound() int               { return 0 }
func (s *Socket) Close() error               { return nil }
