package dht

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// memNet carries datagrams between memPorts in memory, for tests whose
// point is the protocol, not the socket: nothing else on the machine can
// delay, drop or inject their packets, and any address is free to take.
// Like UDP it drops a datagram whose receiver's queue is full, and one to
// an address nobody holds.
type memNet struct {
	mu    sync.Mutex
	ports map[netip.AddrPort]*memPort
	next  uint16
}

// memQueue is how many datagrams a port holds unread, about what a
// default UDP receive buffer holds of small KRPC messages.
const memQueue = 256

func newMemNet() *memNet {
	return &memNet{ports: make(map[netip.AddrPort]*memPort), next: 10000}
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// memPort is one endpoint of a memNet. It implements krpc.AddrPortConn, so
// a Transport takes the same path as with a UDP socket.
type memPort struct {
	net    *memNet
	local  netip.AddrPort
	in     chan datagram
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{} // closed and replaced when the deadline moves
}

// listen takes ip and a port of its own on the network; it is closed at
// the test's end.
func (m *memNet) listen(t testing.TB, ip string) *memPort {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.next++
	p := &memPort{
		net: m, local: netip.AddrPortFrom(a, m.next),
		in: make(chan datagram, memQueue), closed: make(chan struct{}), wake: make(chan struct{}),
	}
	m.ports[p.local] = p
	m.mu.Unlock()
	t.Cleanup(func() { p.Close() })
	return p
}

func (p *memPort) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		p.mu.Lock()
		deadline, wake := p.deadline, p.wake
		p.mu.Unlock()
		n, from, again, err := p.read(b, deadline, wake)
		if !again {
			return n, from, err
		}
	}
}

// read waits for a datagram until the deadline, or until the deadline
// moves (again).
func (p *memPort) read(b []byte, deadline time.Time, wake chan struct{}) (n int, from netip.AddrPort, again bool, err error) {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return 0, from, false, os.ErrDeadlineExceeded
		}
		tm := time.NewTimer(d)
		defer tm.Stop()
		expired = tm.C
	}
	select {
	case dg := <-p.in:
		return copy(b, dg.b), dg.from, false, nil
	case <-p.closed:
		return 0, from, false, net.ErrClosed
	case <-expired:
		return 0, from, false, os.ErrDeadlineExceeded
	case <-wake:
		return 0, from, true, nil
	}
}

func (p *memPort) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := p.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (p *memPort) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	p.net.mu.Lock()
	dst := p.net.ports[netip.AddrPortFrom(to.Addr().Unmap(), to.Port())]
	p.net.mu.Unlock()
	if dst != nil {
		select {
		case dst.in <- datagram{b: append([]byte(nil), b...), from: p.local}:
		default:
		}
	}
	return len(b), nil
}

func (p *memPort) WriteTo(b []byte, to net.Addr) (int, error) {
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("memnet: not a UDP address")
	}
	return p.WriteToAddrPort(b, ua.AddrPort())
}

func (p *memPort) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(p.local) }

func (p *memPort) SetDeadline(t time.Time) error    { return p.SetReadDeadline(t) }
func (p *memPort) SetWriteDeadline(time.Time) error { return nil } // writes never block
func (p *memPort) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	return nil
}

func (p *memPort) Close() error {
	p.once.Do(func() {
		close(p.closed)
		p.net.mu.Lock()
		delete(p.net.ports, p.local)
		p.net.mu.Unlock()
	})
	return nil
}
