package adversary

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"node/peer/wire"
)

// MaxReadLen bounds the messages a Peer reads: an adversary must not be
// the one to run out of memory.
const MaxReadLen = 1 << 20

// Peer is one raw BitTorrent connection after the BEP 3 handshake.
type Peer struct {
	Conn net.Conn
	// Theirs is the other side's handshake.
	Theirs wire.Handshake
	// ID is the peer ID we sent.
	ID [20]byte
	// Fast is whether our handshake set the Fast extension bit (BEP 6).
	Fast bool
}

// RandomID is a peer ID with a recognisable prefix.
func RandomID() [20]byte {
	var id [20]byte
	copy(id[:], "-ADV001-")
	_, _ = rand.Read(id[8:])
	return id
}

// Handshake is the BEP 3 handshake for ih with the extension protocol
// and DHT bits set and the Fast extension's clear: the plain protocol,
// which the behaviours that do not concern BEP 6 speak.
func Handshake(ih [20]byte, id [20]byte) wire.Handshake {
	return wire.Handshake{Reserved: wire.DefaultReserved().WithFast(false), InfoHash: ih, PeerID: id}
}

// FastHandshake is Handshake with the Fast extension bit set.
func FastHandshake(ih [20]byte, id [20]byte) wire.Handshake {
	return wire.Handshake{Reserved: wire.DefaultReserved().WithFast(true), InfoHash: ih, PeerID: id}
}

// DialPeer connects from local (an address on 127.0.0.0/8, or invalid
// for any) to addr and runs the handshake for ih with the given peer ID.
func DialPeer(ctx context.Context, local netip.Addr, addr netip.AddrPort, ih, id [20]byte) (*Peer, error) {
	return dialPeer(ctx, local, addr, ih, id, false)
}

func dialPeer(ctx context.Context, local netip.Addr, addr netip.AddrPort, ih, id [20]byte, fast bool) (*Peer, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	p := &Peer{Conn: nc, ID: id, Fast: fast}
	if err := p.handshake(ctx, ih, true); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

// DialFastPeer is DialPeer with the Fast extension bit in our handshake.
func DialFastPeer(ctx context.Context, local netip.Addr, addr netip.AddrPort, ih, id [20]byte) (*Peer, error) {
	return dialPeer(ctx, local, addr, ih, id, true)
}

func (p *Peer) handshake(ctx context.Context, ih [20]byte, outgoing bool) error {
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = p.Conn.SetDeadline(deadline)
	defer p.Conn.SetDeadline(time.Time{})
	hs := Handshake(ih, p.ID)
	if p.Fast {
		hs = FastHandshake(ih, p.ID)
	}
	ours := hs.Append(nil)
	if outgoing {
		if _, err := p.Conn.Write(ours); err != nil {
			return err
		}
	}
	var buf [wire.HandshakeLen]byte
	if _, err := io.ReadFull(p.Conn, buf[:]); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	h, err := wire.ParseHandshake(buf[:])
	if err != nil {
		return err
	}
	if h.InfoHash != ih {
		return errors.New("handshake for another torrent")
	}
	p.Theirs = h
	if !outgoing {
		if _, err := p.Conn.Write(ours); err != nil {
			return err
		}
	}
	return nil
}

// Send writes m.
func (p *Peer) Send(m *wire.Message) error {
	_, err := p.Conn.Write(m.Append(nil))
	return err
}

// SendRaw writes b as it is.
func (p *Peer) SendRaw(b []byte) error {
	_, err := p.Conn.Write(b)
	return err
}

// SendExtHandshake sends a BEP 10 handshake.
func (p *Peer) SendExtHandshake(h wire.ExtendedHandshake) error {
	b, err := h.Append(nil)
	if err != nil {
		return err
	}
	return p.Send(&wire.Message{Type: wire.Extended, ExtendedID: 0, Payload: b})
}

// ReadMsg reads one message (keep-alives included), at most MaxReadLen
// long. The message owns its buffer.
func (p *Peer) ReadMsg() (wire.Message, error) {
	var lb [4]byte
	if _, err := io.ReadFull(p.Conn, lb[:]); err != nil {
		return wire.Message{}, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n > MaxReadLen {
		return wire.Message{}, fmt.Errorf("message of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.Conn, b); err != nil {
		return wire.Message{}, err
	}
	return wire.ParseMessage(b)
}

// ReadUntil reads messages until f returns true (nil), the connection
// fails or the deadline passes (the error).
func (p *Peer) ReadUntil(d time.Duration, f func(wire.Message) bool) error {
	_ = p.Conn.SetReadDeadline(time.Now().Add(d))
	defer p.Conn.SetReadDeadline(time.Time{})
	for {
		m, err := p.ReadMsg()
		if err != nil && !errors.Is(err, wire.ErrUnknownMessage) {
			return err
		}
		if err == nil && f(m) {
			return nil
		}
	}
}

// Drain reads and discards until the connection fails: how a peer that
// reads everything and answers nothing behaves. It returns the error that
// ended it (io.EOF or a reset when the other side hung up).
func (p *Peer) Drain() error {
	_, err := io.Copy(io.Discard, p.Conn)
	if err == nil {
		err = io.EOF
	}
	return err
}

// Close closes the connection.
func (p *Peer) Close() error { return p.Conn.Close() }

// Server accepts peer connections on a loopback address and runs a
// script on each after the handshake.
type Server struct {
	Addr netip.AddrPort
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]bool
	// Accepted counts the handshakes completed.
	accepted int
}

// ServePeers listens on ip:0 (ip on 127.0.0.0/8 or ::1) and runs script
// for every connection that handshakes for ih. The script owns the Peer;
// it is closed when the script returns or the Server closes.
func ServePeers(ip string, ih [20]byte, script func(*Peer)) (*Server, error) {
	return servePeers(ip, ih, false, script)
}

// ServeFastPeers is ServePeers with the Fast extension bit in our
// handshake.
func ServeFastPeers(ip string, ih [20]byte, script func(*Peer)) (*Server, error) {
	return servePeers(ip, ih, true, script)
}

func servePeers(ip string, ih [20]byte, fast bool, script func(*Peer)) (*Server, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	s := &Server{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ln: ln, open: make(map[net.Conn]bool)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open[nc] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.open, nc)
					s.mu.Unlock()
					nc.Close()
				}()
				p := &Peer{Conn: nc, ID: RandomID(), Fast: fast}
				if err := p.handshake(context.Background(), ih, false); err != nil {
					return
				}
				s.mu.Lock()
				s.accepted++
				s.mu.Unlock()
				script(p)
			}()
		}
	}()
	return s, nil
}

// Accepted is how many connections completed the handshake.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Close stops accepting, closes every connection and waits for the
// scripts to return.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for nc := range s.open {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
