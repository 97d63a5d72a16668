package peer

import (
	"net"
	"sync"
	"testing"
	"time"

	"node/internal/testutil"
	"node/peer/wire"
)

// deadlineConn is a socket that counts the writes that came without a
// fresh write deadline since the write before.
type deadlineConn struct {
	net.Conn // nil: only what the writer uses is implemented
	mu       sync.Mutex
	fresh    bool
	least    time.Duration // the least time left before the deadline at a write
	written  int
	stale    int
}

func (d *deadlineConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6881}
}
func (d *deadlineConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 6881}
}
func (d *deadlineConn) Close() error { return nil }

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fresh = true
	d.least = min(d.least, time.Until(t))
	return nil
}

func (d *deadlineConn) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.fresh {
		d.stale++
	}
	d.fresh = false
	d.written += len(b)
	return len(b), nil
}

func (d *deadlineConn) state() (written, stale int, least time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.written, d.stale, d.least
}

// A queue that never runs dry (a slow peer that keeps its requests
// topped up) makes one long batch: each write of it still gets
// writeTimeout of its own, so the batch can outlast writeTimeout
// without the connection timing out.
func TestWriteDeadlinePerWrite(t *testing.T) {
	nc := &deadlineConn{least: time.Hour}
	c := newConn(nc, wire.Handshake{}, true, 1<<20)
	block := make([]byte, 13+wire.BlockSize)
	const blocks = 200 // 3.2 MiB: about 50 writes of bufio's 64 KiB
	for range blocks {
		c.out <- outMsg{b: block}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	testutil.WaitFor(t, 10*time.Second, "every block written", func() bool {
		w, _, _ := nc.state()
		return w == blocks*len(block)
	})
	c.close(nil)
	<-done
	_, stale, least := nc.state()
	if stale > 0 {
		t.Errorf("%d of the writes had no write deadline set for them", stale)
	}
	if least < writeTimeout-5*time.Second {
		t.Errorf("a write deadline only %v away, want writeTimeout (%v)", least, writeTimeout)
	}
}
