package adversary

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// HandshakeHold is a slowloris against a listener's handshake budget: it
// keeps perAddr connections open from each of many local addresses, and
// sends on each nothing or a byte every so often (a drip), so that a
// listener that counts handshakes in progress per address and overall
// has every slot taken. Whenever the listener closes one it connects
// again at once, as an attacker keeping the budget full would.
type HandshakeHold struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	dials  int // connections made, first ones included
	closes int // connections the listener closed
}

// StartHandshakeHold opens perAddr connections from each of locals to
// addr and holds them: silent when drip is 0, else sending the handshake
// for ih a byte every drip. It returns once the first connections are
// open, or fails, closing what it opened, if one cannot be made.
func StartHandshakeHold(locals []netip.Addr, perAddr int, addr netip.AddrPort, ih [20]byte, drip time.Duration) (*HandshakeHold, error) {
	h := &HandshakeHold{stop: make(chan struct{}), open: make(map[net.Conn]struct{})}
	hs := Handshake(ih, RandomID()).Append(nil)
	for _, local := range locals {
		for range perAddr {
			c, err := h.dial(local, addr)
			if err != nil {
				h.Stop()
				return nil, err
			}
			h.wg.Add(1)
			go h.hold(c, local, addr, hs, drip)
		}
	}
	return h, nil
}

func (h *HandshakeHold) dial(local netip.Addr, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dials++
	h.open[c] = struct{}{}
	return c, nil
}

// hold keeps one slot: it drips on c until the listener closes it, then
// connects again, until Stop.
func (h *HandshakeHold) hold(c net.Conn, local netip.Addr, addr netip.AddrPort, hs []byte, drip time.Duration) {
	defer h.wg.Done()
	for {
		closed := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, c)
			close(closed)
		}()
		var tick <-chan time.Time
		var t *time.Ticker
		if drip > 0 {
			t = time.NewTicker(drip)
			tick = t.C
			_, _ = c.Write(hs[:1])
		}
		stopped := false
	wait:
		for sent := 1; ; {
			select {
			case <-h.stop:
				stopped = true
				c.Close()
				<-closed
				break wait
			case <-closed:
				break wait
			case <-tick:
				if sent < len(hs) {
					_, _ = c.Write(hs[sent : sent+1])
					sent++
				}
			}
		}
		if t != nil {
			t.Stop()
		}
		c.Close()
		h.mu.Lock()
		delete(h.open, c)
		if !stopped {
			h.closes++
		}
		h.mu.Unlock()
		select {
		case <-h.stop:
			return
		default:
		}
		var err error
		if c, err = h.dial(local, addr); err != nil {
			// The listener is gone, or we are being stopped.
			return
		}
	}
}

// Counts returns how many connections it has open now, has made in all,
// and has seen the listener close.
func (h *HandshakeHold) Counts() (open, dials, closes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.open), h.dials, h.closes
}

// Stop closes every connection and waits for the goroutines.
func (h *HandshakeHold) Stop() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.mu.Lock()
	for c := range h.open {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}
