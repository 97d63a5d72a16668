package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/adversary"
	"node/peer/wire"
)

// heapPeak samples the live heap until stop is called, which returns the
// largest sample.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				peak = max(peak, liveHeap())
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return max(peak, liveHeap())
	}
}

// liveHeap is the heap marked live by a collection it runs: unlike
// MemStats.HeapAlloc it leaves out what was allocated since, which under
// a flood is much.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Forty peers stream big messages that a peer may repeat (extended
// handshakes of junk, near the longest message allowed) while the loop is
// held up: what the readers hand the loop is bounded by maxInboundBytes,
// not by a count of events, and readers wait for room, which pushes back
// on the peers. Once the loop runs again an honest download completes
// beside the flood, the budget holding all along.
func TestEventQueueBoundedInBytes(t *testing.T) {
	const flooders = 40
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 2 << 20}, 16<<10)
	info := mi.Info
	maxLen := wire.MaxMessageLen(info.NumPieces())
	ln, err := net.Listen("tcp4", "127.0.151.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: dst, Listener: ln})

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var peers []*adversary.Peer
	for i := range flooders {
		// One address each, so that no cap on connections per IP matters.
		p, err := adversary.DialPeer(ctx, netip.MustParseAddr(fmt.Sprintf("127.0.152.%d", i+1)), addrOf(ln.Addr()), info.InfoHash, adversary.RandomID())
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	for {
		s, err := tor.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Peers == flooders {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Hold the loop: it blocks handing over these stats until we take them.
	held := make(chan Stats)
	if !tor.post(statsEvent{reply: held}) {
		t.Fatal("torrent stopped")
	}
	var once sync.Once
	release := func() { once.Do(func() { <-held }) }
	defer release() // a failure must not leave the torrent unable to stop
	msg := adversary.JunkExtHandshakeMsg(maxLen - 2)
	base := liveHeap()
	stopHeap := heapPeak()
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Stream(msg, &sent, stop)
		}()
	}
	defer func() {
		close(stop)
		for _, p := range peers {
			p.Close()
		}
		wg.Wait()
	}()
	// The readers take whatever the loop lets them; then the peers'
	// writes stall.
	for last := int64(-1); ; {
		select {
		case <-ctx.Done():
			t.Fatal("the flood never stalled")
		case <-time.After(500 * time.Millisecond):
		}
		if n := sent.Load(); n == last {
			break
		} else {
			last = n
		}
	}
	peak := stopHeap()
	// The budget, one message read by each reader and waiting for room,
	// and the flooders' own send buffers.
	bound := uint64(maxInboundBytes + flooders*maxLen + 8<<20)
	t.Logf("live heap %d MiB before the flood, %d MiB more at most while the loop was held (bound %d MiB)",
		base>>20, (peak-min(peak, base))>>20, bound>>20)
	if peak > base && peak-base > bound {
		t.Fatalf("live heap grew by %d MiB while the loop was held; bound %d MiB", (peak-base)>>20, bound>>20)
	}
	release()

	// Under the flood the heap is no measure: the collector counts as
	// live whatever is allocated while it marks. The budget is.
	seedLn, err := net.Listen("tcp4", "127.0.151.2:0")
	if err != nil {
		t.Fatal(err)
	}
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: seedLn, Peers: addrs(ln)})
	var most int64
	for done := false; !done; {
		select {
		case <-tor.Done():
			done = true
		case <-ctx.Done():
			s, _ := tor.Stats(context.Background())
			t.Fatalf("not complete beside the flood: %+v", s)
		case <-time.After(5 * time.Millisecond):
		}
		most = max(most, tor.inbound.inUse())
	}
	sameTree(t, src, dst, "content")
	t.Logf("%d MiB flooded; at most %d KiB of the inbound budget in use", sent.Load()>>20, most>>10)
	if most > maxInboundBytes {
		t.Fatalf("%d bytes read and not yet handled; bound %d", most, maxInboundBytes)
	}
}
