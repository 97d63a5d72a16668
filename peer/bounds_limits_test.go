package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/adversary"
	"node/metadata"
	"node/peer/wire"
)

// A Config left at zero takes the Default* bounds.
func TestConfigDefaults(t *testing.T) {
	tor, err := New(Config{InfoHash: metadata.InfoHash{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := tor.cfg
	if c.MaxConns != DefaultMaxConns || c.MaxDials != DefaultMaxDials || c.BufferBudget != DefaultBufferBudget || c.UploadSlots != DefaultUploadSlots {
		t.Errorf("defaults: MaxConns %d, MaxDials %d, BufferBudget %d, UploadSlots %d", c.MaxConns, c.MaxDials, c.BufferBudget, c.UploadSlots)
	}
}

// However many peers connect, at most DefaultMaxConns stay; the others are
// hung up on after their handshake.
func TestDefaultMaxConns(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.80.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ih := [20]byte{0x80}
	tor, _ := runTorrent(t, Config{InfoHash: ih, Dir: t.TempDir(), Listener: ln})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const extra = 5
	var hungUp atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range DefaultMaxConns + extra {
		local := netip.AddrFrom4([4]byte{127, 0, 81, byte(i + 1)})
		p, err := adversary.DialPeer(ctx, local, addrOf(ln.Addr()), ih, adversary.RandomID())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if p.Drain() != nil && ctx.Err() == nil {
				hungUp.Add(1)
			}
		}()
	}
	var s Stats
	for {
		if s, err = tor.Stats(ctx); err != nil {
			t.Fatalf("%v (hung up on %d)", err, hungUp.Load())
		}
		if s.Peers+int(hungUp.Load()) == DefaultMaxConns+extra {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Peers != DefaultMaxConns {
		t.Fatalf("%d peers connected, bound is DefaultMaxConns = %d", s.Peers, DefaultMaxConns)
	}
	cancel()
}

// With the default MaxDials, at most DefaultMaxDials dials are in flight:
// peers that accept and never finish the handshake hold theirs. Each is
// on an address of its own, as maxConnsPerIP bounds the dials to one.
func TestDefaultMaxDials(t *testing.T) {
	var accepted atomic.Int64
	var addrs []netip.AddrPort
	for i := range DefaultMaxDials + 8 {
		ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.82.%d:0", i+1))
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, addrOf(ln.Addr()))
		done := make(chan struct{})
		t.Cleanup(func() { ln.Close(); <-done })
		go func() {
			defer close(done)
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				held = append(held, c)
			}
		}()
	}
	tor, _ := runTorrent(t, Config{InfoHash: [20]byte{0x82}, Dir: t.TempDir(), Peers: addrs})
	deadline := time.Now().Add(10 * time.Second)
	for accepted.Load() < DefaultMaxDials && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// The handshake timeout is 10 s: none of these dials ends in the
	// window, so none may be replaced.
	settle := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(settle) && accepted.Load() <= DefaultMaxDials {
		time.Sleep(5 * time.Millisecond)
	}
	s, err := tor.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := accepted.Load(); n != DefaultMaxDials || s.Dialing != DefaultMaxDials {
		t.Fatalf("%d dials accepted, %d in flight; bound is DefaultMaxDials = %d", n, s.Dialing, DefaultMaxDials)
	}
}

// stallSeeder starts a peer that has every piece, unchokes, and never
// sends a block; it reports each piece index asked for the first time.
func stallSeeder(t *testing.T, ip string, info *metadata.Info) (*fakePeer, <-chan uint32) {
	asked := make(chan uint32, info.NumPieces())
	fp := startFakePeer(t, ip, info.InfoHash, func(c net.Conn) {
		all := wire.NewBits(info.NumPieces())
		for i := range info.NumPieces() {
			all.Set(i)
		}
		send(c, &wire.Message{Type: wire.Bitfield, Bitfield: all})
		send(c, &wire.Message{Type: wire.Unchoke})
		seen := make(map[uint32]bool)
		readMsgs(c, func(m wire.Message) bool {
			if m.Type == wire.Request && !seen[m.Index] {
				seen[m.Index] = true
				asked <- m.Index
			}
			return true
		})
	})
	return fp, asked
}

// collect gathers what arrives on ch until want values have, then for a
// short window more: a bound shows in nothing further arriving.
func collect(t *testing.T, ch <-chan uint32, want int) int {
	t.Helper()
	n := 0
	timeout := time.After(10 * time.Second)
	for n < want {
		select {
		case <-ch:
			n++
		case <-timeout:
			t.Fatalf("%d of %d pieces asked for", n, want)
		}
	}
	window := time.After(500 * time.Millisecond)
	for {
		select {
		case <-ch:
			n++
		case <-window:
			return n
		}
	}
}

// Pieces are buffered whole until verified, so at most BufferBudget bytes
// of pieces are in progress: with one-block pieces and a peer that never
// delivers, that many pieces are asked for and no more.
func TestBufferBudgetBound(t *testing.T) {
	const pl = 16 << 10
	mi := makeContent(t, t.TempDir(), "content", map[string]int{"f": 100 * pl}, pl)
	fp, asked := stallSeeder(t, "127.0.83.1", mi.Info)
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: t.TempDir(),
		Peers: []netip.AddrPort{fp.addr}, BufferBudget: 4 * pl})
	if n := collect(t, asked, 4); n != 4 {
		t.Fatalf("%d pieces in progress, BufferBudget holds 4", n)
	}
}

// Once maxWriting verified pieces wait for the disk, no new piece is
// started, whatever the buffer budget allows; one fewer and they are.
func TestMaxWritingBound(t *testing.T) {
	const pl = 16 << 10
	mi := makeContent(t, t.TempDir(), "content", map[string]int{"f": 100 * pl}, pl)
	for i, writing := range []int{maxWriting - 1, maxWriting} {
		fp, asked := stallSeeder(t, fmt.Sprintf("127.0.84.%d", i+1), mi.Info)
		tor, err := New(Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: t.TempDir(), Peers: []netip.AddrPort{fp.addr}})
		if err != nil {
			t.Fatal(err)
		}
		// Stands in for pieces stuck behind a slow disk: set before Run,
		// so before the loop owns it, and never counted down, since these
		// writes never finish.
		tor.writing = writing
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tor.Run(ctx) }()
		var n int
		if writing < maxWriting {
			n = collect(t, asked, 1)
		} else {
			n = collect(t, asked, 0)
		}
		cancel()
		<-done
		if got := n > 0; got != (writing < maxWriting) {
			t.Errorf("%d pieces writing: %d pieces started; maxWriting is %d", writing, n, maxWriting)
		}
	}
}

// A peer's read loop hands the torrent at most maxBatch messages at once,
// however many are already buffered.
func TestMaxBatchBound(t *testing.T) {
	client, server := tcpPair(t, "127.0.85.1")
	const total = 3*maxBatch + 5
	var b []byte
	for i := range total {
		b = (&wire.Message{Type: wire.Have, Index: uint32(i)}).Append(b)
	}
	// One write, so the reader finds many messages buffered at once.
	if _, err := client.Write(b); err != nil {
		t.Fatal(err)
	}
	c := newConn(server, wire.Handshake{}, false, wire.MaxMessageLen(0))
	batches := make(chan int, total)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.readLoop(func(_ *conn, ms []inMsg) bool {
			batches <- len(ms)
			return true
		})
	}()
	got, largest := 0, 0
	timeout := time.After(10 * time.Second)
	for got < total {
		select {
		case n := <-batches:
			got += n
			largest = max(largest, n)
		case <-timeout:
			t.Fatalf("%d of %d messages delivered", got, total)
		}
	}
	client.Close()
	<-done
	if largest != maxBatch {
		t.Errorf("largest batch %d, bound is maxBatch = %d", largest, maxBatch)
	}
}

// A peer that never delivers has at most initialPipeline requests out:
// with one-block pieces and room in the buffer budget, that many pieces
// (its pipeline grows only with what it delivers; see pipeline.go).
func TestInitialPipelineBound(t *testing.T) {
	const pl = 16 << 10
	mi := makeContent(t, t.TempDir(), "content", map[string]int{"f": 4 * initialPipeline * pl}, pl)
	fp, asked := stallSeeder(t, "127.0.86.1", mi.Info)
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: t.TempDir(), Peers: []netip.AddrPort{fp.addr}})
	if n := collect(t, asked, initialPipeline); n != initialPipeline {
		t.Fatalf("%d requests out to one peer, bound is initialPipeline = %d", n, initialPipeline)
	}
}
