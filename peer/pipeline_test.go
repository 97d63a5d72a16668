package peer

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/metadata"
	"node/peer/wire"
)

// servePipelineHog starts h on ip; the leecher is to dial it.
func servePipelineHog(t *testing.T, ip string, h *adversary.PipelineHog, ih [20]byte) netip.AddrPort {
	t.Helper()
	s, err := adversary.ServePeers(ip, ih, func(p *adversary.Peer) { _ = h.Run(p) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.Addr
}

// A peer that serves every request at once, in a batch every 20 ms, gets
// a pipeline deeper than the old fixed 64 blocks, and never deeper than
// the reqq it advertises, nor than maxPipeline however large a reqq it
// claims; the download completes.
func TestPipelineGrowsWithinReqq(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reqq, cap int
	}{
		{"reqq 200", 200, 200},
		{"huge reqq", 1 << 40, maxPipeline},
		{"no reqq", 0, maxPipeline},
		{"reqq 1", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const blocks = 2048 // 32 MiB
			src := t.TempDir()
			mi := makeContent(t, src, "content", map[string]int{"f": blocks * wire.BlockSize}, 256<<10)
			data, err := os.ReadFile(filepath.Join(src, "content", "f"))
			if err != nil {
				t.Fatal(err)
			}
			h := &adversary.PipelineHog{Pieces: mi.Info.NumPieces(), Reqq: tc.reqq, Every: 20 * time.Millisecond, Serve: -1,
				Read: hogBlocks(data, mi.Info.PieceLength)}
			addr := servePipelineHog(t, "127.0.211.1", h, mi.Info.InfoHash)
			dst := t.TempDir()
			tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst, Peers: []netip.AddrPort{addr}, deepWithoutFast: true})
			limit := 60 * time.Second
			if tc.reqq == 1 {
				// One block per 20 ms batch is 800 KiB/s: the bound shows
				// from the first batch, as slow start begins at
				// initialPipeline and grows with every block.
				testutil.WaitFor(t, 20*time.Second, "64 blocks served", func() bool { return h.Served() >= 64 })
				if p := h.Peak(); p != 1 {
					t.Fatalf("peak %d requests held, reqq 1", p)
				}
				return
			}
			waitDone(t, tor, limit)
			sameTree(t, src, dst, "content")
			p := h.Peak()
			t.Logf("peak %d requests held", p)
			if p > tc.cap {
				t.Fatalf("peak %d requests held, bound %d", p, tc.cap)
			}
			if p <= safePipeline {
				t.Fatalf("peak %d requests held: the pipeline did not grow past %d", p, safePipeline)
			}
		})
	}
}

// Without the Fast extension a cancel need not be answered, so however
// fast the peer, its pipeline stays within safePipeline.
func TestPipelineShallowWithoutFast(t *testing.T) {
	const blocks = 1024
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": blocks * wire.BlockSize}, 256<<10)
	data, err := os.ReadFile(filepath.Join(src, "content", "f"))
	if err != nil {
		t.Fatal(err)
	}
	h := &adversary.PipelineHog{Pieces: mi.Info.NumPieces(), Reqq: 1 << 20, Every: 20 * time.Millisecond, Serve: -1,
		Read: hogBlocks(data, mi.Info.PieceLength)}
	addr := servePipelineHog(t, "127.0.211.9", h, mi.Info.InfoHash)
	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst, Peers: []netip.AddrPort{addr}})
	waitDone(t, tor, 60*time.Second)
	if p := h.Peak(); p > safePipeline || p < safePipeline/2 {
		t.Fatalf("peak %d requests held, want up to safePipeline = %d", p, safePipeline)
	}
}

// hogBlocks serves blocks of data, a torrent with pieces of pl bytes.
func hogBlocks(data []byte, pl int64) func(index, begin, length uint32) []byte {
	return func(index, begin, length uint32) []byte {
		off := int64(index)*pl + int64(begin)
		if off < 0 || off+int64(length) > int64(len(data)) {
			return nil
		}
		return data[off : off+int64(length)]
	}
}

// A peer that advertises a negative reqq sent a handshake our decoder
// refuses: it is dropped and asked for nothing.
func TestNegativeReqqDropped(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 64 * wire.BlockSize}, 256<<10)
	h := &adversary.PipelineHog{Pieces: mi.Info.NumPieces(), Reqq: -5, Every: 20 * time.Millisecond, Serve: -1,
		Read: func(uint32, uint32, uint32) []byte { return nil }}
	s, err := adversary.ServePeers("127.0.211.2", mi.Info.InfoHash, func(p *adversary.Peer) {
		_ = h.Run(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: t.TempDir(), Peers: []netip.AddrPort{s.Addr}})
	testutil.WaitFor(t, 10*time.Second, "the peer connected", func() bool { return s.Accepted() >= 1 })
	testutil.WaitFor(t, 10*time.Second, "the peer dropped", func() bool {
		st, err := tor.Stats(t.Context())
		return err == nil && st.Peers == 0
	})
	if p := h.Peak(); p != 0 {
		t.Fatalf("%d requests sent to a peer with a negative reqq", p)
	}
}

// A seeder that serves fast, draws a deep pipeline and then sits on it
// neither holds more than maxPipeline requests nor stops the download:
// its requests are cancelled once it has delivered nothing for its stall
// time and go to an honest seeder, and it is asked for at most
// safePipeline blocks after that.
func TestServeThenStallHog(t *testing.T) {
	const blocks, serve = 1280, 600 // 20 MiB, of which the hog serves 9.4
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": blocks * wire.BlockSize}, 256<<10)
	data, err := os.ReadFile(filepath.Join(src, "content", "f"))
	if err != nil {
		t.Fatal(err)
	}
	h := &adversary.PipelineHog{Pieces: mi.Info.NumPieces(), Reqq: 1 << 20, Every: 10 * time.Millisecond, Serve: serve,
		Read: hogBlocks(data, mi.Info.PieceLength)}
	hogAddr := servePipelineHog(t, "127.0.211.3", h, mi.Info.InfoHash)

	// The honest seeder is ours, paced to 1 MiB/s so that the hog's
	// pipeline matters: the hog has most of the download to itself until
	// it stalls, and what is left after its stall outlasts the hog's
	// stall time (minRequestTimeout) before the endgame cancels its
	// requests anyway.
	ln := listenTCP(t, "127.0.211.4:0")
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true, MaxUploadRate: 1 << 20})
	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst, Peers: []netip.AddrPort{hogAddr, addrOf(ln.Addr())}, deepWithoutFast: true})
	testutil.WaitFor(t, 20*time.Second, "the hog stalled with a deep pipeline", func() bool { return h.Served() >= serve && h.Held() > safePipeline })
	atStall := h.Held()
	waitDone(t, tor, 60*time.Second)
	sameTree(t, src, dst, "content")
	st, err := tor.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hog: peak %d held, %d at its stall, %d cancels, %d still held; stats %+v", h.Peak(), atStall, h.Cancels(), h.Held(), st)
	if h.Peak() > maxPipeline {
		t.Fatalf("the hog held %d requests, bound %d", h.Peak(), maxPipeline)
	}
	if st.Stalls == 0 {
		t.Fatal("no stall counted")
	}
	// After the cancels, what it holds is what it was asked since.
	if held := h.Held(); held > safePipeline {
		t.Fatalf("the hog holds %d requests after its stall, bound %d", held, safePipeline)
	}
}

// The stall ceiling: a stall at any depth above safePipeline drops to it;
// below, it halves, never under minPipeline.
func TestPipelineStalledCeiling(t *testing.T) {
	now := time.Now()
	p := newPipeline(now)
	p.depth = maxPipeline
	p.stalled(maxPipeline)
	if p.ceiling != safePipeline || p.depth != safePipeline {
		t.Fatalf("after a deep stall: ceiling %d depth %d, want %d", p.ceiling, p.depth, safePipeline)
	}
	p.stalled(safePipeline)
	if p.ceiling != safePipeline/2 {
		t.Fatalf("after a second stall: ceiling %d, want %d", p.ceiling, safePipeline/2)
	}
	for range 10 {
		p.stalled(p.ceiling)
	}
	if p.ceiling != minPipeline {
		t.Fatalf("ceiling %d after many stalls, floor %d", p.ceiling, minPipeline)
	}
}

// The depth follows rate × 2 rtt: 40 MiB/s at 100 ms is 40 MiB/s × 0.2 s /
// 16 KiB = 512 blocks, held to maxPipeline; 4 MiB/s at 100 ms is 51.2
// blocks, raised to safePipeline since the peer sends 1 MiB/s or more;
// 64 KiB/s is 0.8 blocks. The rtt is taken from the request sent into an
// empty pipeline, not from blocks queued behind others.
func TestPipelineDepthFromRateAndRTT(t *testing.T) {
	now := time.Now()
	p := newPipeline(now)
	first := blockKey{0, 0}
	p.sent(first, now, true)
	now = now.Add(100 * time.Millisecond)
	p.received(first, wire.BlockSize, 100*time.Millisecond, now)
	if p.rtt != 100*time.Millisecond {
		t.Fatalf("rtt %v", p.rtt)
	}
	// Queued blocks arrive later than a round trip: no effect on rtt.
	p.received(blockKey{0, wire.BlockSize}, wire.BlockSize, 900*time.Millisecond, now)
	if p.rtt != 100*time.Millisecond {
		t.Fatalf("rtt %v after a queued block", p.rtt)
	}
	if p.depth != initialPipeline+2 {
		t.Fatalf("slow start: depth %d, want %d", p.depth, initialPipeline+2)
	}
	// A window at 40 MiB/s.
	p.bytes = 20 << 20
	now = p.mark.Add(rateWindow)
	p.update(now, true)
	if p.depth != maxPipeline {
		t.Fatalf("depth %d at 40 MiB/s, want %d", p.depth, maxPipeline)
	}
	// Windows at 4 MiB/s bring the average down to 51 blocks: raised to
	// safePipeline.
	for range 40 {
		p.bytes = 2 << 20
		now = now.Add(rateWindow)
		p.update(now, true)
	}
	if p.depth != safePipeline+1 {
		t.Fatalf("depth %d at 4 MiB/s, want %d", p.depth, safePipeline+1)
	}
	// Windows at 64 KiB/s: 0.8 blocks (pipelineDepth holds it to
	// minPipeline).
	for range 40 {
		p.bytes = 32 << 10
		now = now.Add(rateWindow)
		p.update(now, true)
	}
	if p.depth != 1 {
		t.Fatalf("depth %d at 64 KiB/s, want 1", p.depth)
	}
	// Idle windows (no requests out) leave it alone.
	now = now.Add(10 * rateWindow)
	p.update(now, false)
	if p.depth != 1 {
		t.Fatalf("depth %d after an idle window", p.depth)
	}
}

// reqqLeecher connects to our seeder of info at addr from ip, checks that
// we advertise ourReqq, says it is interested and waits to be unchoked.
func reqqLeecher(t *testing.T, ip string, addr netip.AddrPort, info *metadata.Info) *adversary.Peer {
	t.Helper()
	p := dialAdversary(t, ip, addr, info.InfoHash)
	if err := p.SendExtHandshake(wire.ExtendedHandshake{M: map[string]int{}, V: "adversary"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(&wire.Message{Type: wire.Interested}); err != nil {
		t.Fatal(err)
	}
	reqq := -1
	err := p.ReadUntil(10*time.Second, func(m wire.Message) bool {
		if m.Type == wire.Extended && m.ExtendedID == 0 {
			h, err := wire.ParseExtendedHandshake(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			reqq = h.Reqq
		}
		return m.Type == wire.Unchoke
	})
	if err != nil {
		t.Fatal(err)
	}
	if reqq != ourReqq {
		t.Fatalf("we advertise reqq %d, want %d", reqq, ourReqq)
	}
	return p
}

// requestBlocks sends requests for the first n blocks of info in one write.
func requestBlocks(t *testing.T, p *adversary.Peer, info *metadata.Info, n int) {
	t.Helper()
	var buf []byte
	for i := range n {
		off := int64(i) * wire.BlockSize
		piece := off / info.PieceLength
		buf = (&wire.Message{Type: wire.Request, Index: uint32(piece), Begin: uint32(off - piece*info.PieceLength), Length: wire.BlockSize}).Append(buf)
	}
	if err := p.SendRaw(buf); err != nil {
		t.Fatal(err)
	}
}

// The reqq we advertise is one we hold: a leecher that asks for ourReqq
// blocks at once, before reading any, gets every one.
func TestOurReqqHeld(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": ourReqq * wire.BlockSize}, 1<<20)
	ln := listenTCP(t, "127.0.211.5:0")
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true})
	p := reqqLeecher(t, "127.0.211.6", addrOf(ln.Addr()), mi.Info)
	requestBlocks(t, p, mi.Info, ourReqq)
	got := 0
	if err := p.ReadUntil(30*time.Second, func(m wire.Message) bool {
		if m.Type == wire.Piece {
			got++
		}
		return got == ourReqq
	}); err != nil {
		t.Fatalf("%d of %d blocks: %v", got, ourReqq, err)
	}
}

// A leecher that asks for three times ourReqq blocks and reads nothing
// is dropped once twice ourReqq wait in its queue (maxQueueBytes).
func TestOverReqqNonReaderDropped(t *testing.T) {
	src := t.TempDir()
	const n = 3 * ourReqq
	mi := makeContent(t, src, "content", map[string]int{"f": n * wire.BlockSize}, 1<<20)
	ln := listenTCP(t, "127.0.211.7:0")
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true})
	p := reqqLeecher(t, "127.0.211.8", addrOf(ln.Addr()), mi.Info)
	// What the kernel buffers on its side is not our queue: keep it small.
	_ = p.Conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	requestBlocks(t, p, mi.Info, n)
	testutil.WaitFor(t, 20*time.Second, "the non-reader dropped", func() bool {
		st, err := tor.Stats(t.Context())
		return err == nil && st.Peers == 0
	})
}
