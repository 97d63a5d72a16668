package peer

import (
	"runtime"
	"testing"
	"time"

	"node/internal/testutil"
	"node/peer/wire"
)

// A connection that served a burst of blocks and then has nothing to
// send does not keep its write batch: a seeding daemon's connections
// are mostly idle, and each would otherwise pin writeBufSize for as long
// as it stays up.
func TestBatchWriterIdleReleases(t *testing.T) {
	const conns = 64
	var ncs []*deadlineConn
	var cs []*conn
	done := make(chan struct{}, conns)
	for range conns {
		nc := &deadlineConn{least: time.Hour}
		c := newConn(nc, wire.Handshake{}, true, 1<<20)
		ncs, cs = append(ncs, nc), append(cs, c)
		go func() {
			defer func() { done <- struct{}{} }()
			c.writeLoop()
		}()
	}
	defer func() {
		for _, c := range cs {
			c.close(nil)
		}
		for range conns {
			<-done
		}
	}()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, c := range cs {
		for i := range 16 {
			c.sendBlock(&blockRead{st: patternBlocks{}, index: 0, begin: uint32(i) * wire.BlockSize, fail: func(error) { t.Error("read failed") }}, wire.BlockSize)
		}
	}
	want := 16 * (13 + wire.BlockSize)
	testutil.WaitFor(t, 10*time.Second, "every block written", func() bool {
		for _, nc := range ncs {
			if w, _, _ := nc.state(); w != want {
				return false
			}
		}
		return true
	})
	var after runtime.MemStats
	runtime.GC()
	runtime.GC() // a sync.Pool's buffers survive one cycle
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if bound := int64(conns * writeBufSize / 4); held > bound {
		t.Fatalf("%d idle connections hold %d KiB after serving a burst (%d KiB each); want under %d KiB in all",
			conns, held>>10, held/conns>>10, bound>>10)
	}
	t.Logf("%d idle connections hold %d KiB", conns, held>>10)
}
