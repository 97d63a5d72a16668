//go:build cgo

package utp

import (
	"context"
	"net"
	"net/netip"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	libutp "github.com/anacrolix/go-libutp"
	"golang.org/x/time/rate"
)

// Available reports whether this binary can speak uTP.
const Available = true

// acceptQueue is how many accepted connections wait for the listener's
// Accept: libutp's own backlog holds 5 and closes what does not fit, so
// a burst of honest SYNs in one batch of datagrams (go-libutp reads 16
// messages at a time) must be taken off it at once. They count in MaxInbound.
const acceptQueue = 32

// Socket is one UDP socket carrying uTP and, through PacketConn, the DHT.
type Socket struct {
	lib    *libutp.Socket
	lim    *rate.Limiter
	srcs   sourceLimits
	v6only bool

	inbound  atomic.Int64 // incoming connections handed out and not yet closed
	syns     atomic.Int64 // SYNs the firewall judged
	refused  atomic.Int64 // SYNs the firewall dropped
	accepted chan net.Conn
	ln       listener
	pc       packetConn

	closeOnce sync.Once
	done      chan struct{}
}

// Listen binds a UDP socket of network (udp4 or udp6) on addr for uTP
// and the DHT.
func Listen(network, addr string) (*Socket, error) {
	lib, err := libutp.NewSocket(network, addr)
	if err != nil {
		return nil, err
	}
	s := &Socket{
		lib:      lib,
		v6only:   network == "udp6",
		lim:      rate.NewLimiter(AcceptRate, AcceptBurst),
		srcs:     sourceLimits{limit: SourceAcceptRate, burst: SourceAcceptBurst, m: make(map[netip.Prefix]*rate.Limiter)},
		accepted: make(chan net.Conn, acceptQueue),
		done:     make(chan struct{}),
	}
	s.ln = listener{s: s, done: make(chan struct{})}
	s.pc = packetConn{s: s}
	lib.SetSyncFirewallCallback(s.firewall)
	if uc := udpConnOf(lib); uc != nil {
		_ = uc.SetReadBuffer(socketBuffer)
		_ = uc.SetWriteBuffer(socketBuffer)
	}
	go s.pump()
	return s, nil
}

// socketBuffer is the UDP socket's kernel receive and send buffer. The
// default (212992 bytes on Linux, about 150 full-size datagrams) fills
// while go-libutp's reader takes its lock and crosses into C for each
// datagram, and every datagram the kernel drops there halves uTP's
// window: on loopback uTP ran at 10 MB/s with it. Linux caps it at
// net.core.rmem_max and wmem_max (4 MiB on Debian's defaults).
const socketBuffer = 4 << 20

// udpConnOf is the *net.UDPConn go-libutp (v1.3.2) keeps unexported in
// its Socket, whose buffers it never sizes; nil if it is not there.
func udpConnOf(lib *libutp.Socket) *net.UDPConn {
	f := reflect.ValueOf(lib).Elem().FieldByName("pc")
	if !f.IsValid() || f.Type() != reflect.TypeFor[net.PacketConn]() {
		return nil
	}
	pc := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface()
	uc, _ := pc.(*net.UDPConn)
	return uc
}

// firewall decides, before libutp answers a SYN or allocates for it,
// whether to drop it (true). It runs under go-libutp's lock: it must not
// call into the library.
func (s *Socket) firewall(from net.Addr) bool {
	s.syns.Add(1)
	select {
	case <-s.ln.done:
		s.refused.Add(1)
		return true
	default:
	}
	if s.inbound.Load() >= MaxInbound || !s.srcs.allow(addrPort(from).Addr(), time.Now()) || !s.lim.Allow() {
		s.refused.Add(1)
		return true
	}
	return false
}

// sourceOf is the source a SYN's budget is kept for: its address's /24
// (IPv4, or IPv4-mapped) or /64 (IPv6).
func sourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// sourceLimits keeps a SYN budget per source (see sourceOf).
type sourceLimits struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	m     map[netip.Prefix]*rate.Limiter
}

func (l *sourceLimits) allow(a netip.Addr, now time.Time) bool {
	if !a.IsValid() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	src := sourceOf(a)
	lim := l.m[src]
	if lim == nil {
		if len(l.m) >= MaxSourceBuckets {
			for p, b := range l.m {
				if b.TokensAt(now) >= float64(b.Burst()) {
					delete(l.m, p)
				}
			}
			if len(l.m) >= MaxSourceBuckets {
				clear(l.m)
			}
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[src] = lim
	}
	return lim.AllowN(now, 1)
}

// set changes the budget of every source, those tracked included.
func (l *sourceLimits) set(limit rate.Limit, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit, l.burst = limit, burst
	for _, b := range l.m {
		b.SetLimit(limit)
		b.SetBurst(burst)
	}
}

func (l *sourceLimits) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// pump takes libutp's accepted connections (its backlog holds 5, and
// closes what does not fit) and hands them to the listener view.
func (s *Socket) pump() {
	for {
		nc, err := s.lib.Accept()
		if err != nil {
			return
		}
		if s.inbound.Add(1) > MaxInbound {
			s.inbound.Add(-1)
			nc.Close()
			continue
		}
		c := &inConn{Conn: nc, s: s}
		select {
		case s.accepted <- c:
		case <-s.ln.done:
			c.Close()
		case <-s.done:
			c.Close()
			return
		}
	}
}

// Addr is the socket's address.
func (s *Socket) Addr() netip.AddrPort { return addrPort(s.lib.Addr()) }

// Dial opens a uTP connection to a, which must be of the socket's family.
func (s *Socket) Dial(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	return s.lib.DialContext(ctx, "", a.String())
}

// Listener is the view that accepts incoming uTP connections. Closing it
// refuses new ones and leaves the socket open.
func (s *Socket) Listener() net.Listener { return &s.ln }

// PacketConn is the view for the DHT: the datagrams that are not uTP.
// Closing it closes the socket, uTP included: the DHT owns the socket.
func (s *Socket) PacketConn() net.PacketConn { return &s.pc }

// Refused counts the SYNs dropped by the bounds (see the package doc).
func (s *Socket) Refused() int64 { return s.refused.Load() }

// Inbound is the number of incoming connections open.
func (s *Socket) Inbound() int { return int(s.inbound.Load()) }

// Close closes the socket and every uTP connection on it.
func (s *Socket) Close() error {
	s.closeOnce.Do(func() {
		s.ln.Close()
		close(s.done)
		s.lib.Close()
	})
	return nil
}

// inConn is an incoming connection, counted until closed.
type inConn struct {
	net.Conn
	s    *Socket
	once sync.Once
}

func (c *inConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.s.inbound.Add(-1) })
	return err
}

type listener struct {
	s    *Socket
	once sync.Once
	done chan struct{}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.s.accepted:
		return c, nil
	case <-l.done:
	case <-l.s.done:
	}
	return nil, net.ErrClosed
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *listener) Addr() net.Addr { return l.s.lib.Addr() }

// packetConn passes the datagrams libutp did not take. go-libutp's own
// deadline calls panic; the DHT sets none.
type packetConn struct{ s *Socket }

func (p *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := p.s.lib.ReadFrom(b)
	if err != nil {
		// go-libutp's only read error is its socket closing.
		return 0, nil, net.ErrClosed
	}
	return n, a, nil
}

func (p *packetConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, a, err := p.ReadFrom(b)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return n, addrPort(a), nil
}

func (p *packetConn) WriteTo(b []byte, a net.Addr) (int, error) {
	select {
	case <-p.s.done:
		return 0, net.ErrClosed
	default:
	}
	return p.s.lib.WriteTo(b, a)
}

func (p *packetConn) WriteToAddrPort(b []byte, a netip.AddrPort) (int, error) {
	return p.WriteTo(b, net.UDPAddrFromAddrPort(a))
}

func (p *packetConn) Close() error { return p.s.Close() }

func (p *packetConn) LocalAddr() net.Addr { return p.s.lib.Addr() }

func (p *packetConn) SetDeadline(time.Time) error      { return os.ErrNoDeadline }
func (p *packetConn) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (p *packetConn) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }

// IPv6Only reports whether the socket takes IPv6 datagrams alone, which
// the DHT asks of its IPv6 socket (of a *net.UDPConn it reads the socket
// option): a udp6 socket does, as Go sets IPV6_V6ONLY for it.
func (p *packetConn) IPv6Only() bool { return p.s.v6only }
