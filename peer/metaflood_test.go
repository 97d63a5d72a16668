package peer

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/metadata"
	"node/peer/wire"
)

// A send queue is bounded in bytes, blocks we serve counted at their
// length: a peer that does not read is dropped once maxQueueBytes are
// waiting, twice the ourReqq blocks it may ask for, before the queue's
// outQueueLen slots run out. What those blocks pin meanwhile is a slot
// and a blockRead each, not their data.
func TestSendQueueBoundedInBytes(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := newConn(a, wire.Handshake{}, false, wire.MaxMessageLen(0))
	defer c.close(nil)
	// No writer runs: nothing leaves the queue.
	queued := 0
	for ; queued < outQueueLen; queued++ {
		select {
		case <-c.closed:
		default:
			c.sendBlock(&blockRead{}, wire.BlockSize)
			if q := c.queued.Load(); q > maxQueueBytes {
				t.Fatalf("%d bytes queued, bound %d", q, maxQueueBytes)
			}
			continue
		}
		break
	}
	if !errors.Is(c.err, errQueueFull) {
		t.Fatalf("after %d blocks: %v", queued, c.err)
	}
	if want := maxQueueBytes / (13 + wire.BlockSize); queued != want+1 {
		t.Fatalf("dropped at block %d, want %d", queued, want+1)
	}
	if maxQueueBytes/(13+wire.BlockSize) >= outQueueLen {
		t.Fatal("the byte bound never fires before the message count")
	}
	want := maxQueueBytes / (13 + wire.BlockSize)
	if want < 2*ourReqq {
		t.Fatalf("the queue holds %d blocks, less than twice the reqq we advertise (%d)", want, ourReqq)
	}
	if pinned := outQueueLen*unsafe.Sizeof(outMsg{}) + uintptr(want)*unsafe.Sizeof(blockRead{}); pinned > 512<<10 {
		t.Fatalf("a full queue pins %d KiB besides control messages", pinned>>10)
	}
}

// The writer gives back what it takes: a reading peer's queue drains to 0.
func TestSendQueueAccounting(t *testing.T) {
	a, b := net.Pipe()
	c := newConn(a, wire.Handshake{}, false, wire.MaxMessageLen(0))
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	var got atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 64<<10)
		for {
			k, err := b.Read(buf)
			got.Add(int64(k))
			if err != nil {
				return
			}
		}
	}()
	want := 0
	for i := range 50 {
		m := &wire.Message{Type: wire.Extended, ExtendedID: 3, Payload: make([]byte, 1000+i)}
		if i%2 == 0 {
			c.sendMetadata(m)
		} else {
			c.send(m)
		}
		want += len(m.Append(nil))
	}
	// The counters drop as the writer takes each message, before it is
	// written: wait for the bytes to arrive, then for the counters.
	testutil.WaitFor(t, 5*time.Second, "every byte to be written", func() bool { return got.Load() >= int64(want) })
	testutil.WaitFor(t, 5*time.Second, "the send queue's counters to drain", func() bool {
		return c.queued.Load() == 0 && c.metaOut.Load() == 0
	})
	c.close(nil)
	<-done
	b.Close()
	<-readDone
	if n := got.Load(); n != int64(want) {
		t.Fatalf("read %d bytes, want %d", n, want)
	}
}

// Connections that ask for metadata over and over and
// never read the answers hold at most maxMetadataAnswers answers each,
// not one per request.
func TestMetadataRequestFloodBoundedMemory(t *testing.T) {
	info := multiPieceInfo(t, 1000) // metadata piece 0 is a full 16 KiB
	ln, err := net.Listen("tcp4", "127.0.98.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Listener: ln})
	<-tor.Metadata()
	addr := addrOf(ln.Addr())

	const conns, requests = 8, 1000
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	// Every connection is made before any spams: a spammer's misconduct
	// may get its address refused, and a handshake refused for that
	// would fail the test for the wrong reason.
	var ps []*adversary.Peer
	for range conns {
		p := dialAdversary(t, "127.0.98.10", addr, info.InfoHash)
		// Whatever the kernel buffers is not our heap: keep it small.
		_ = p.Conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		ps = append(ps, p)
	}
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.SpamMetadataRequests(requests, 0, 5*time.Second); err != nil {
				t.Logf("spammer: %v", err) // refused: fewer connections to hold
			}
		}()
	}
	wg.Wait()

	// Per connection: the answers in flight, the queue's slots, the read
	// buffer and the write buffer; and slack for the rest of the process.
	perConn := maxMetadataAnswers*(metadata.MetadataPieceSize+128) +
		outQueueLen*int(unsafe.Sizeof(outMsg{})) + maxReadChunks*readBufSize + writeBufSize + 32<<10
	bound := uint64(conns*perConn + 8<<20)
	// The requests are in the kernel's buffers or read; sample the heap
	// while the loop works through them.
	var peak uint64
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > before.HeapAlloc {
			peak = max(peak, ms.HeapAlloc-before.HeapAlloc)
		}
		if peak > bound {
			t.Fatalf("heap grew by %d KiB, bound %d KiB", peak>>10, bound>>10)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("heap grew by at most %d KiB (bound %d KiB)", peak>>10, bound>>10)
}

// A peer that asks for every metadata piece at once, as some clients do,
// gets every one: the requests beyond maxMetadataAnswers wait, they are
// not refused.
func TestMetadataBacklogServed(t *testing.T) {
	info := multiPieceInfo(t, (maxMetadataAnswers+3)*metadata.MetadataPieceSize/20)
	n := (len(info.Raw) + metadata.MetadataPieceSize - 1) / metadata.MetadataPieceSize
	if n <= maxMetadataAnswers {
		t.Fatalf("%d metadata pieces", n)
	}
	ln, err := net.Listen("tcp4", "127.0.98.2:0")
	if err != nil {
		t.Fatal(err)
	}
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Listener: ln})
	<-tor.Metadata()
	p := dialAdversary(t, "127.0.98.20", addrOf(ln.Addr()), info.InfoHash)
	if err := p.SendExtHandshake(adversary.MetadataHandshake(0)); err != nil {
		t.Fatal(err)
	}
	id, err := p.TheirMetaID(5 * time.Second)
	if err != nil || id == 0 {
		t.Fatalf("their ut_metadata id %d: %v", id, err)
	}
	for piece := range n {
		if err := p.SendMetadata(id, metadata.MetadataMsg{Type: metadata.MetadataRequest, Piece: piece}, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]bool, n)
	left := n
	err = p.ReadUntil(10*time.Second, func(m wire.Message) bool {
		if m.Type != wire.Extended || m.ExtendedID != adversary.MetaID {
			return false
		}
		mm, data, err := metadata.ParseMetadataMsg(m.Payload)
		if err != nil || mm.Type != metadata.MetadataData {
			t.Fatalf("answer %+v: %v", mm, err)
		}
		start := mm.Piece * metadata.MetadataPieceSize
		if string(data) != string(info.Raw[start:min(start+metadata.MetadataPieceSize, len(info.Raw))]) {
			t.Fatalf("piece %d: wrong data", mm.Piece)
		}
		if !got[mm.Piece] {
			got[mm.Piece] = true
			left--
		}
		return left == 0
	})
	if err != nil {
		t.Fatalf("%d of %d pieces: %v", n-left, n, err)
	}
}
