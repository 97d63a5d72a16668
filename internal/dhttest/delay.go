package dhttest

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DelayConn sends each datagram after a delay chosen by its destination,
// without blocking the writer, so that a network of servers on loopback
// answers with the round trips of a wide-area one. Datagrams still pending
// at Close are dropped; Close returns once no delayed write is running.
type DelayConn struct {
	net.PacketConn
	delay     atomic.Pointer[func(to net.Addr) time.Duration]
	onRead    atomic.Pointer[func(from net.Addr)]
	mu        sync.Mutex
	closed    bool
	timers    map[*time.Timer]bool // the delayed writes not yet run
	pending   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// NewDelayConn wraps pc; it sends at once until SetDelay.
func NewDelayConn(pc net.PacketConn) *DelayConn { return &DelayConn{PacketConn: pc} }

// SetDelay makes every later datagram to addr wait f(addr) (none when
// that is zero or less); nil sends at once.
func (c *DelayConn) SetDelay(f func(to net.Addr) time.Duration) {
	if f == nil {
		c.delay.Store(nil)
		return
	}
	c.delay.Store(&f)
}

// OnRead calls f (nil: nothing) with the source of every datagram read
// from now on, as it is read: a benchmark learns when a process it
// started sent its first query.
func (c *DelayConn) OnRead(f func(from net.Addr)) {
	if f == nil {
		c.onRead.Store(nil)
		return
	}
	c.onRead.Store(&f)
}

func (c *DelayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if f := c.onRead.Load(); f != nil && err == nil {
		(*f)(addr)
	}
	return n, addr, err
}

func (c *DelayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	var d time.Duration
	if f := c.delay.Load(); f != nil {
		d = (*f)(addr)
	}
	if d <= 0 {
		return c.PacketConn.WriteTo(p, addr)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.pending.Add(1)
	buf := slices.Clone(p)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer c.pending.Done()
		c.mu.Lock()
		closed := c.closed
		delete(c.timers, t)
		c.mu.Unlock()
		if !closed {
			_, _ = c.PacketConn.WriteTo(buf, addr)
		}
	})
	if c.timers == nil {
		c.timers = make(map[*time.Timer]bool)
	}
	c.timers[t] = true
	c.mu.Unlock()
	return len(p), nil
}

// Close may be called more than once (an anacrolix server closes its
// socket on a goroutine of its own); every call waits for the delayed
// writes to drain.
func (c *DelayConn) Close() error {
	c.mu.Lock()
	c.closed = true
	for t := range c.timers {
		if t.Stop() {
			c.pending.Done()
		}
	}
	clear(c.timers)
	c.mu.Unlock()
	c.closeOnce.Do(func() { c.closeErr = c.PacketConn.Close() })
	c.pending.Wait()
	return c.closeErr
}
