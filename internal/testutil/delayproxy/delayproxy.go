// Package delayproxy is test and benchmark support: a TCP proxy on
// loopback that delays the bytes of each direction by a fixed time, to
// put a peer "far away" where the kernel has no netem. Each direction is
// a delay line, not stop-and-wait: what is read at t is written at
// t+Delay while later bytes are read behind it, so the throughput is
// kept and only the latency grows. A direction holds at most MaxInFlight
// bytes; when that many wait, it stops reading and TCP flow control
// slows the sender. A half-close is forwarded after the delay, like the
// bytes before it.
package delayproxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultMaxInFlight is the bytes one direction of a connection holds
// when Options.MaxInFlight is 0: 8 MiB, 160 MiB/s at 50 ms.
const DefaultMaxInFlight = 8 << 20

// readChunk is the most one read takes in; what it gets is copied out at
// its own length, so small messages hold no more than they are.
const readChunk = 64 << 10

// Options configure a Proxy.
type Options struct {
	Delay       time.Duration // added to each direction
	MaxInFlight int           // bytes waiting per direction; 0: DefaultMaxInFlight
}

// Proxy forwards the connections it accepts to one target.
type Proxy struct {
	ln     net.Listener
	target string
	opt    Options

	mu     sync.Mutex
	conns  map[*pair]bool
	closed bool
	wg     sync.WaitGroup

	peakMu sync.Mutex
	peak   int
}

// Listen starts a proxy on addr (a loopback address, port 0 for any)
// that forwards to target.
func Listen(addr string, target netip.AddrPort, opt Options) (*Proxy, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	if !ap.Addr().IsLoopback() || !target.Addr().IsLoopback() {
		return nil, errors.New("delayproxy: loopback addresses only")
	}
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = DefaultMaxInFlight
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target.String(), opt: opt, conns: make(map[*pair]bool)}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the proxy accepts on.
func (p *Proxy) Addr() netip.AddrPort {
	ap := p.ln.Addr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// PeakInFlight is the most bytes one direction has held at once.
func (p *Proxy) PeakInFlight() int {
	p.peakMu.Lock()
	defer p.peakMu.Unlock()
	return p.peak
}

// Close stops accepting, closes every connection and waits for all of
// the proxy's goroutines to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(in)
	}
}

// pair is one proxied connection.
type pair struct {
	in, out net.Conn
	once    sync.Once
	done    chan struct{}
}

func (c *pair) close() {
	c.once.Do(func() {
		close(c.done)
		c.in.Close()
		c.out.Close()
	})
}

func (p *Proxy) serve(in net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: 5 * time.Second}
	out, err := d.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	c := &pair{in: in, out: out, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[c] = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, dir := range [][2]net.Conn{{in, out}, {out, in}} {
		l := &line{p: p, c: c}
		l.cond = sync.NewCond(&l.mu)
		wg.Add(2)
		go func() {
			defer wg.Done()
			l.read(dir[0])
		}()
		go func() {
			defer wg.Done()
			l.write(dir[1])
		}()
	}
	// Both directions end in a half-close or an error; either way the
	// pair is then done.
	wg.Wait()
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// line is one direction of a pair: chunks read, waiting for their time.
type line struct {
	p    *Proxy
	c    *pair
	mu   sync.Mutex
	cond *sync.Cond
	q    []chunk
	held int
	eof  bool
	dead bool
}

type chunk struct {
	b  []byte
	at time.Time // when to write it
}

// fail ends the pair (an error in either direction ends both) and wakes
// whatever waits on l.
func (l *line) fail() {
	l.c.close()
	l.mu.Lock()
	l.dead = true
	l.cond.Broadcast()
	l.mu.Unlock()
}

func (l *line) read(src net.Conn) {
	// A pair closed from outside must wake a reader waiting for room.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-l.c.done:
			l.mu.Lock()
			l.dead = true
			l.cond.Broadcast()
			l.mu.Unlock()
		case <-stop:
		}
	}()
	buf := make([]byte, readChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			ch := chunk{b: append([]byte(nil), buf[:n]...), at: time.Now().Add(l.p.opt.Delay)}
			l.mu.Lock()
			for l.held > 0 && l.held+n > l.p.opt.MaxInFlight && !l.dead {
				l.cond.Wait()
			}
			if l.dead {
				l.mu.Unlock()
				return
			}
			l.q = append(l.q, ch)
			l.held += n
			held := l.held
			l.cond.Broadcast()
			l.mu.Unlock()
			l.p.peakMu.Lock()
			l.p.peak = max(l.p.peak, held)
			l.p.peakMu.Unlock()
		}
		if err != nil && !errors.Is(err, io.EOF) {
			l.fail()
			return
		}
		if err != nil {
			l.mu.Lock()
			l.eof = true
			l.cond.Broadcast()
			l.mu.Unlock()
			return
		}
	}
}

func (l *line) write(dst net.Conn) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for len(l.q) == 0 && !l.eof && !l.dead {
			l.cond.Wait()
		}
		if l.dead {
			l.mu.Unlock()
			return
		}
		if len(l.q) == 0 { // eof, everything before it written
			l.mu.Unlock()
			if tc, ok := dst.(*net.TCPConn); ok {
				if tc.CloseWrite() == nil {
					return
				}
			}
			l.fail()
			return
		}
		ch := l.q[0]
		l.q[0] = chunk{}
		l.q = l.q[1:]
		l.mu.Unlock()
		if d := time.Until(ch.at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-l.c.done:
				return
			}
		}
		if _, err := dst.Write(ch.b); err != nil {
			l.fail()
			return
		}
		l.mu.Lock()
		l.held -= len(ch.b)
		l.cond.Broadcast()
		l.mu.Unlock()
	}
}
