package api

import "time"

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

// DecodeAnswer is decodeAnswer, for the fuzz target.
var DecodeAnswer = decodeAnswer
