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
	const blocks = 200 // 3.2 MiB: about 13 writes of writeBufSize
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

// rateConn records, for each write, its length and the time its write
// deadline left it.
type rateConn struct {
	deadlineConn
	deadline time.Time
	writes   []rateWrite
}

type rateWrite struct {
	n    int
	left time.Duration
}

func (d *rateConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deadline = t
	return nil
}

func (d *rateConn) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes = append(d.writes, rateWrite{len(b), time.Until(d.deadline)})
	d.written += len(b)
	return len(b), nil
}

// A peer that reads slowly but steadily, at slowestReader, is not cut
// off however large the writes its blocks are batched into: a write
// deadline fixed per write, whatever its size, would drop a peer that
// cannot take a whole write batch within writeTimeout.
func TestWriteDeadlineSlowReader(t *testing.T) {
	nc := &rateConn{}
	c := newConn(nc, wire.Handshake{}, true, 1<<20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	const blocks = 64
	for i := range blocks {
		c.sendBlock(&blockRead{st: patternBlocks{}, index: 0, begin: uint32(i) * wire.BlockSize, fail: func(error) { t.Error("read failed") }}, wire.BlockSize)
	}
	testutil.WaitFor(t, 10*time.Second, "every block written", func() bool {
		nc.mu.Lock()
		defer nc.mu.Unlock()
		return nc.written == blocks*(13+wire.BlockSize)
	})
	c.close(nil)
	<-done
	nc.mu.Lock()
	defer nc.mu.Unlock()
	for _, w := range nc.writes {
		// The time a peer reading at slowestReader takes over the
		// write, less slack for a loaded machine.
		need := time.Duration(float64(w.n)/float64(slowestReader)*float64(time.Second)) - 5*time.Second
		if w.left < need {
			t.Errorf("a write of %d bytes had %v before its deadline: a peer reading %d bytes/s needs %v",
				w.n, w.left.Round(time.Second), slowestReader, need.Round(time.Second))
		}
	}
}
