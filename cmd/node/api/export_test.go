package api

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// ListenShort is Listen with the listener's bounds shortened, so that
// tests of the timeouts and the connection bound end quickly: request
// bounds a handler, conn a client's reading and idling.
func ListenShort(addr string, cfg ServerConfig, request, conn time.Duration, maxConns int) (*Server, error) {
	return listen(addr, cfg, limits{
		readHeader: conn, read: conn, request: request, write: request + conn, idle: conn,
		maxConns: maxConns,
	})
}

// ListenerLimits are the bounds Listen gives its server.
func (s *Server) ListenerLimits() (readHeader, read, write, idle time.Duration, maxHeader int) {
	return s.srv.ReadHeaderTimeout, s.srv.ReadTimeout, s.srv.WriteTimeout, s.srv.IdleTimeout, s.srv.MaxHeaderBytes
}

// MaxConns is the bound on the server's connections.
func (s *Server) MaxConns() int { return s.maxConns }

// WithProcNet makes a Client read its socket tables through open, words
// in order, as Linux's /proc/net/tcp would be on another machine.
func WithProcNet(open func(string) (io.ReadCloser, error), order binary.ByteOrder) ClientOption {
	return func(c *Client) { c.procNet, c.order = open, order }
}

// ScanProcNet is scanProcNet, its sockets as strings, for the fuzz target.
func ScanProcNet(r io.Reader, order binary.ByteOrder) ([]string, error) {
	var out []string
	err := scanProcNet(r, order, func(s procSocket) {
		out = append(out, fmt.Sprintf("%v %02X %d", s.local, s.state, s.uid))
	})
	return out, err
}

// AddrOwnerOK is addrOwnerOK.
var AddrOwnerOK = addrOwnerOK

// DecodeAnswer is decodeAnswer, for the fuzz target.
var DecodeAnswer = decodeAnswer
