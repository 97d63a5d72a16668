package peer

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/metadata"
	"node/peer/wire"
)

// Subnets 127.0.200-204.x belong to the Fast extension tests.

// onLoop runs f on tor's loop and waits for it.
func onLoop(t testing.TB, tor *Torrent, f func(*Torrent)) {
	t.Helper()
	done := make(chan struct{})
	if !tor.post(loopFunc(func(t *Torrent) { f(t); close(done) })) {
		t.Fatal("torrent stopped")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("loop did not run the function")
	}
}

// peerAt is the loop's state of the peer at a, or nil; call on the loop.
func (t *Torrent) peerAt(a netip.AddrPort) *peerState {
	for c, ps := range t.peers {
		if c.addr == a {
			return ps
		}
	}
	return nil
}

// fastSwarm is content of 40 pieces of 32 KiB and an honest seeder of
// ours for it, on ip.
func fastSwarm(t *testing.T, ip string) (src string, info *metadata.Info, seeder *Torrent, seedAddr netip.AddrPort) {
	t.Helper()
	src = t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 40 * 32 << 10, "g": 5000}, 32<<10)
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	seeder, _ = runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true})
	return src, mi.Info, seeder, addrOf(ln.Addr())
}

func serveLiar(t *testing.T, ip string, ih [20]byte, fast bool, script func(*adversary.Peer) error) (*adversary.Server, <-chan error) {
	t.Helper()
	ended := make(chan error, 16)
	serve := adversary.ServePeers
	if fast {
		serve = adversary.ServeFastPeers
	}
	s, err := serve(ip, ih, func(p *adversary.Peer) { ended <- script(p) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ended
}

func waitEnded(t *testing.T, ended <-chan error, what string) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not hung up on", what)
	}
}

// A fast peer that claims everything and rejects every request: each
// rejected block is asked of the honest seeder at once, so the fetch
// completes with no request left to time out.
func TestFastRejectAllReaskedAtOnce(t *testing.T) {
	src, info, _, honest := fastSwarm(t, "127.0.200.1")
	liar := adversary.NewFastLiar()
	srv, _ := serveLiar(t, "127.0.200.2", info.InfoHash, true, liar.RejectAll)
	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: dst, Peers: []netip.AddrPort{srv.Addr, honest}})
	waitDone(t, tor, 20*time.Second)
	sameTree(t, src, dst, "content")
	s := stats(t, tor)
	if liar.Rejects.Load() == 0 || s.Rejected == 0 {
		t.Fatalf("the liar rejected %d, we counted %d: it was never asked", liar.Rejects.Load(), s.Rejected)
	}
	if s.TimedOut != 0 || s.HashFails != 0 || s.Done != info.Length {
		t.Fatalf("stats %+v: want no request timed out, no hash failure, every byte", s)
	}
	if s.FastReceived.HaveAll < 2 || s.FastSent.HaveNone < 2 {
		t.Fatalf("fast counters %+v / %+v: want have all from both, have none to both", s.FastReceived, s.FastSent)
	}
	t.Logf("liar asked %d times; stats %+v", liar.Requests.Load(), s)
}

// A fast peer that rejects blocks we never asked it for is dropped (BEP 6
// says so); the requests it held go to the honest seeder, and nothing of
// it is counted.
func TestFastRejectUnrequestedDropped(t *testing.T) {
	src, info, _, honest := fastSwarm(t, "127.0.200.11")
	liar := adversary.NewFastLiar()
	srv, ended := serveLiar(t, "127.0.200.12", info.InfoHash, true, func(p *adversary.Peer) error { return liar.RejectUnrequested(p, 3) })
	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: dst, Peers: []netip.AddrPort{srv.Addr}})
	waitEnded(t, ended, "a peer rejecting unrequested blocks")
	onLoop(t, tor, func(tt *Torrent) {
		for _, pc := range tt.pk.inProgress {
			for b, asked := range pc.askedBy {
				if len(asked) != 0 {
					t.Errorf("piece %d block %d still asked of %d peers", pc.index, b, len(asked))
				}
			}
			if pc.unasked != pc.remaining {
				t.Errorf("piece %d: %d unasked, %d remaining", pc.index, pc.unasked, pc.remaining)
			}
		}
	})
	onLoop(t, tor, func(tt *Torrent) { tt.addCandidate(honest, netip.AddrPort{}, time.Now()) })
	waitDone(t, tor, 20*time.Second)
	sameTree(t, src, dst, "content")
	if s := stats(t, tor); s.Rejected != 0 || s.Done != info.Length || s.HashFails != 0 {
		t.Fatalf("stats %+v: want no reject counted, every byte", s)
	}
}

// A fast peer that chokes us without rejecting keeps our requests (BEP 6:
// a choke no longer cancels them) until it rejects them; then they go to
// the honest seeder at once.
func TestFastChokeKeepsRequestsUntilRejected(t *testing.T) {
	src, info, _, honest := fastSwarm(t, "127.0.200.21")
	liar := adversary.NewFastLiar()
	release := make(chan struct{})
	srv, _ := serveLiar(t, "127.0.200.22", info.InfoHash, true, func(p *adversary.Peer) error {
		return liar.ChokeThenReject(p, 8, release)
	})
	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: dst, Peers: []netip.AddrPort{srv.Addr}})
	select {
	case <-liar.Choked:
	case <-time.After(10 * time.Second):
		t.Fatal("the liar was never asked for 8 blocks")
	}
	held := 0
	testutil.WaitFor(t, 10*time.Second, "the choke to arrive", func() bool {
		choked := false
		onLoop(t, tor, func(tt *Torrent) {
			if ps := tt.peerAt(srv.Addr); ps != nil {
				choked, held = ps.peerChoking, len(ps.requests)
			}
		})
		return choked
	})
	if held < 8 {
		t.Fatalf("after the choke %d requests are outstanding, want the 8 it holds", held)
	}
	onLoop(t, tor, func(tt *Torrent) { tt.addCandidate(honest, netip.AddrPort{}, time.Now()) })
	close(release)
	waitDone(t, tor, 20*time.Second)
	sameTree(t, src, dst, "content")
	if s := stats(t, tor); s.Rejected < 8 || s.TimedOut != 0 {
		t.Fatalf("stats %+v: want its ≥ 8 rejects counted, nothing timed out", s)
	}
}

// A flood of suggest piece and allowed fast messages costs a bounded
// list each, and moves our requests no further than the bound: while it
// chokes us we ask it only for pieces among the first maxAllowedFastIn it
// allowed.
func TestFastAdviceFloodBounded(t *testing.T) {
	src, info, _, honest := fastSwarm(t, "127.0.201.1")
	n := info.NumPieces()
	liar := adversary.NewFastLiar()
	const flood = 20000
	const first = 3
	srv, _ := serveLiar(t, "127.0.201.2", info.InfoHash, true, func(p *adversary.Peer) error {
		return liar.FloodAdvice(p, n, first, flood)
	})
	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: dst, Peers: []netip.AddrPort{srv.Addr}})
	testutil.WaitFor(t, 10*time.Second, "the flood to be read", func() bool {
		return stats(t, tor).FastReceived.Suggest == flood
	})
	onLoop(t, tor, func(tt *Torrent) {
		ps := tt.peerAt(srv.Addr)
		if ps == nil {
			t.Fatal("the flooder was dropped")
		}
		if len(ps.suggested) != maxSuggested || len(ps.allowedIn) > maxAllowedFastIn {
			t.Errorf("kept %d suggestions (bound %d), %d allowed fast (bound %d)",
				len(ps.suggested), maxSuggested, len(ps.allowedIn), maxAllowedFastIn)
		}
		// The newest suggestions are kept, newest first.
		if want := (first + flood - 1) % n; ps.suggested[0] != want {
			t.Errorf("newest suggestion %d, want %d", ps.suggested[0], want)
		}
	})
	onLoop(t, tor, func(tt *Torrent) { tt.addCandidate(honest, netip.AddrPort{}, time.Now()) })
	waitDone(t, tor, 20*time.Second)
	sameTree(t, src, dst, "content")
	for _, p := range liar.Pieces() {
		if off := (int(p) - first + n) % n; off >= maxAllowedFastIn {
			t.Errorf("asked the choking flooder for piece %d, not among the first %d it allowed", p, maxAllowedFastIn)
		}
	}
	if len(liar.Pieces()) == 0 {
		t.Error("no allowed fast piece was asked for while choked")
	}
}

// A fast peer's suggestion of a piece it has and we need is what we start
// with it.
func TestFastSuggestionPreferred(t *testing.T) {
	_, info, _, _ := fastSwarm(t, "127.0.201.11")
	const want = 37
	asked := make(chan uint32, 1)
	srv, _ := serveLiar(t, "127.0.201.12", info.InfoHash, true, func(p *adversary.Peer) error {
		_ = p.Send(&wire.Message{Type: wire.HaveAll})
		_ = p.Send(&wire.Message{Type: wire.SuggestPiece, Index: want})
		_ = p.Send(&wire.Message{Type: wire.Unchoke})
		return p.ReadUntil(10*time.Second, func(m wire.Message) bool {
			if m.Type == wire.Request {
				asked <- m.Index
				return true
			}
			return false
		})
	})
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Peers: []netip.AddrPort{srv.Addr}})
	select {
	case got := <-asked:
		if got != want {
			t.Fatalf("first request for piece %d, want the suggested %d", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no request")
	}
}

// Allowed fast and suggest piece for pieces beyond the torrent are
// ignored: the peer stays, and is asked only for the one real piece it
// allows.
func TestFastAllowedOutOfRangeIgnored(t *testing.T) {
	_, info, _, _ := fastSwarm(t, "127.0.201.21")
	n := uint32(info.NumPieces())
	liar := adversary.NewFastLiar()
	srv, _ := serveLiar(t, "127.0.201.22", info.InfoHash, true, func(p *adversary.Peer) error {
		return liar.AllowOutOfRange(p, []uint32{n, n + 1, 1 << 31, 0xffffffff, 5})
	})
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Peers: []netip.AddrPort{srv.Addr}})
	testutil.WaitFor(t, 10*time.Second, "a request for the allowed piece", func() bool { return liar.Requests.Load() > 0 })
	if got := liar.Pieces(); !slices.Equal(got, []uint32{5}) {
		t.Fatalf("asked for pieces %v, want only 5", got)
	}
	onLoop(t, tor, func(tt *Torrent) {
		ps := tt.peerAt(srv.Addr)
		if ps == nil {
			t.Fatal("dropped for advice out of range")
		}
		for _, p := range append(slices.Clone(ps.allowedIn), ps.suggested...) {
			if p >= int(n) {
				t.Errorf("kept piece %d of %d", p, n)
			}
		}
	})
}

// Two answers to "what do you have", and BEP 6 messages from a peer that
// did not set the bit, are protocol errors: the peer is dropped.
func TestFastProtocolErrorsDrop(t *testing.T) {
	_, info, _, _ := fastSwarm(t, "127.0.202.1")
	n := info.NumPieces()
	cases := []struct {
		name   string
		fast   bool
		script func(*adversary.FastLiar, *adversary.Peer) error
	}{
		{"have all twice", true, func(f *adversary.FastLiar, p *adversary.Peer) error { return f.HaveTwice(p, wire.HaveAll, n) }},
		{"have all then have none", true, func(f *adversary.FastLiar, p *adversary.Peer) error { return f.HaveTwice(p, wire.HaveNone, n) }},
		{"have all then bitfield", true, func(f *adversary.FastLiar, p *adversary.Peer) error { return f.HaveTwice(p, wire.Bitfield, n) }},
		{"have all without the bit", false, func(f *adversary.FastLiar, p *adversary.Peer) error { return f.FastWithoutBit(p, wire.HaveAll) }},
		{"have none without the bit", false, func(f *adversary.FastLiar, p *adversary.Peer) error { return f.FastWithoutBit(p, wire.HaveNone) }},
		{"reject without the bit", false, func(f *adversary.FastLiar, p *adversary.Peer) error { return f.FastWithoutBit(p, wire.RejectRequest) }},
		{"allowed fast without the bit", false, func(f *adversary.FastLiar, p *adversary.Peer) error { return f.FastWithoutBit(p, wire.AllowedFast) }},
		{"suggest without the bit", false, func(f *adversary.FastLiar, p *adversary.Peer) error { return f.FastWithoutBit(p, wire.SuggestPiece) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := adversary.NewFastLiar()
			srv, ended := serveLiar(t, "127.0.202.2", info.InfoHash, tc.fast, func(p *adversary.Peer) error { return tc.script(f, p) })
			runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Peers: []netip.AddrPort{srv.Addr}})
			waitEnded(t, ended, tc.name)
		})
	}
}

// As a seeder to a fast leecher we choke: have all first, then its allowed
// fast set, exactly BEP 6's for its address; a request outside the set is
// rejected, the set's pieces are served once each, a request beyond that
// is rejected.
func TestFastSeederAllowsAndRejects(t *testing.T) {
	_, info, _, seedAddr := fastSwarm(t, "127.0.203.1")
	ih := info.InfoHash
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// UploadSlots is 4: four interested peers take them first, so the one
	// under test stays choked (the optimistic slot is kept for 30 s).
	for i := range DefaultUploadSlots {
		p, err := adversary.DialFastPeer(ctx, netip.AddrFrom4([4]byte{127, 0, 203, byte(10 + i)}), seedAddr, ih, adversary.RandomID())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		_ = p.Send(&wire.Message{Type: wire.HaveNone})
		_ = p.Send(&wire.Message{Type: wire.Interested})
		if err := p.ReadUntil(10*time.Second, func(m wire.Message) bool { return m.Type == wire.Unchoke }); err != nil {
			t.Fatalf("squatter %d: %v", i, err)
		}
		go p.Drain()
	}
	local := netip.MustParseAddr("127.0.203.99")
	p, err := adversary.DialFastPeer(ctx, local, seedAddr, ih, adversary.RandomID())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	first, err := p.ReadMsg()
	if err != nil || first.Type != wire.HaveAll {
		t.Fatalf("first message %v, %v; want have all", first.Type, err)
	}
	_ = p.Send(&wire.Message{Type: wire.HaveNone})
	_ = p.Send(&wire.Message{Type: wire.Interested})
	want := wire.AllowedFastSet(local, ih, info.NumPieces(), allowedFastSetSize)
	var got []uint32
	err = p.ReadUntil(10*time.Second, func(m wire.Message) bool {
		if m.Type == wire.Unchoke {
			t.Fatal("unchoked: the slots were free")
		}
		if m.Type == wire.AllowedFast {
			got = append(got, m.Index)
		}
		return len(got) == len(want)
	})
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("allowed fast %v (%v), want %v", got, err, want)
	}
	outside := uint32(0)
	for slices.Contains(want, outside) {
		outside++
	}
	allowed := want[0]
	blocks := int((info.PieceSize(int(allowed)) + wire.BlockSize - 1) / wire.BlockSize)
	req := func(piece uint32, b int) {
		_ = p.Send(&wire.Message{Type: wire.Request, Index: piece, Begin: uint32(b * wire.BlockSize), Length: wire.BlockSize})
	}
	req(outside, 0)
	for b := range blocks {
		req(allowed, b)
	}
	req(allowed, 0) // beyond the piece's worth
	var rejects, pieces []wire.Message
	err = p.ReadUntil(10*time.Second, func(m wire.Message) bool {
		switch m.Type {
		case wire.RejectRequest:
			rejects = append(rejects, m)
		case wire.Piece:
			pieces = append(pieces, m)
		case wire.Unchoke:
			t.Fatal("unchoked: the slots were free")
		}
		return len(rejects)+len(pieces) == blocks+2
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pieces) != blocks || len(rejects) != 2 || rejects[0].Index != outside || rejects[1].Index != allowed {
		t.Fatalf("%d blocks and rejects %+v; want %d blocks, rejects of piece %d then %d", len(pieces), rejects, blocks, outside, allowed)
	}
	for _, m := range pieces {
		if m.Index != allowed {
			t.Fatalf("served piece %d", m.Index)
		}
	}
}
