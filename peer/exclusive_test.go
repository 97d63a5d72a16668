package peer

import (
	"net"
	"testing"
	"time"

	"node/peer/wire"
)

// Subnet 127.0.246.x belongs to these tests.

// exclusiveSwarm is a torrent (not running: the test drives its loop's
// handlers itself) of 4 pieces of 4 blocks, connected over loopback TCP to
// one peer per ip, each a fast peer that has every piece and unchokes us;
// piece 0 is in progress, only one peer's to fetch, as after a hash
// failure with several senders.
func exclusiveSwarm(t *testing.T, ips ...string) (*Torrent, *pieceState, []*peerState) {
	t.Helper()
	mi := makeContent(t, t.TempDir(), "content", map[string]int{"f": 4 * 64 << 10}, 64<<10)
	info := mi.Info
	tor, err := New(Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for c := range tor.peers {
			c.close(nil)
		}
		if tor.st != nil {
			tor.st.Close()
		}
	})
	if err := tor.setInfo(info); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var out []*peerState
	for i, ip := range ips {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		far, err := ln.Accept()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { far.Close() })
		hs := tor.ourHandshake()
		hs.PeerID[0] ^= byte(i + 1)
		c := newConn(nc, hs, true, 1<<20)
		tor.connected(c, now)
		ps := tor.peers[c]
		if ps == nil {
			t.Fatalf("peer at %s not connected", ip)
		}
		ps.have = wire.NewBits(info.NumPieces())
		for p := range info.NumPieces() {
			ps.have.Set(p)
		}
		ps.fast, ps.peerChoking, ps.amInterest = true, false, true
		out = append(out, ps)
	}
	tor.startPiece(0)
	pc := tor.pk.inProgress[0]
	pc.exclusive = true
	return tor, pc, out
}

// ask has ps ask for blocks of the piece in progress until it has n out.
func ask(t *testing.T, tor *Torrent, ps *peerState, n int, now time.Time) {
	t.Helper()
	for len(ps.requests) < n {
		if !tor.requestFromProgress(ps, now, false) {
			t.Fatalf("%v asked for %d blocks, want %d", ps.c.addr, len(ps.requests), n)
		}
	}
}

// deliver has ps answer its request for key with a block.
func deliver(t *testing.T, tor *Torrent, ps *peerState, key blockKey, now time.Time) {
	t.Helper()
	m := wire.Message{Type: wire.Piece, Index: uint32(key.piece), Begin: uint32(key.begin), Block: make([]byte, tor.blockLen(key.piece, int(key.begin/wire.BlockSize)))}
	if err := tor.onPiece(ps, m, now); err != nil {
		t.Fatalf("%v: block %v: %v", ps.c.addr, key, err)
	}
}

// pieceKey is one of ps's requests for piece 0.
func pieceKey(t *testing.T, ps *peerState) blockKey {
	t.Helper()
	for k := range ps.requests {
		if k.piece == 0 {
			return k
		}
	}
	t.Fatalf("%v has no request for piece 0", ps.c.addr)
	return blockKey{}
}

// A fast peer that owns an exclusive piece and chokes us (the piece not
// allowed fast) loses it with its requests: a block it sends anyway, after
// another peer took the piece over, must not make a second sender, or the
// next hash failure bans no one, and a liar that does this every time is
// never the single culprit.
func TestExclusivePieceOneSenderAfterFastChoke(t *testing.T) {
	tor, pc, ps := exclusiveSwarm(t, "127.0.246.1", "127.0.246.2")
	p, q := ps[0], ps[1]
	now := time.Now()
	ask(t, tor, p, 3, now)
	if pc.owner != p {
		t.Fatal("setup: the first asker does not own the piece")
	}
	deliver(t, tor, p, pieceKey(t, p), now)
	late := pieceKey(t, p)
	if err := tor.onMessage(p, wire.Message{Type: wire.Choke}, now); err != nil {
		t.Fatal(err)
	}
	if pc.owner != nil {
		t.Fatal("the choking peer still owns the piece")
	}
	for key := range p.requests {
		if key.piece == pc.index {
			t.Errorf("the choking peer still has request %v for the piece", key)
		}
	}
	if n := len(pc.contributors()); n != 0 {
		t.Errorf("the released piece keeps the blocks of %d senders; want it restarted", n)
	}
	ask(t, tor, q, 1, now)
	if pc.owner != q {
		t.Fatal("the second peer did not take the piece over")
	}
	// p answers a request of before its choke, then q its own.
	deliver(t, tor, p, late, now)
	deliver(t, tor, q, pieceKey(t, q), now)
	from := pc.contributors()
	if len(from) != 1 || from[0] != q.c.addr.Addr() {
		t.Errorf("exclusive piece has senders %v, want only %v", from, q.c.addr.Addr())
	}
	if !pc.exclusive {
		t.Error("the restarted piece is no longer exclusive")
	}
	if tor.peers[p.c] != p {
		t.Error("the choking peer was dropped for answering a request we had cancelled")
	}
}

// The milder form: the owner's request times out, which frees the piece,
// but the blocks it had already sent must not stay for the next owner to
// complete.
func TestExclusivePieceRestartedWhenOwnerTimesOut(t *testing.T) {
	tor, pc, ps := exclusiveSwarm(t, "127.0.246.11", "127.0.246.12")
	p, q := ps[0], ps[1]
	now := time.Now()
	ask(t, tor, p, 2, now)
	deliver(t, tor, p, pieceKey(t, p), now)
	stuck := pieceKey(t, p)
	tor.cancelRequest(p, stuck, now.Add(requestTimeout))
	if pc.owner != nil || len(pc.contributors()) != 0 || pc.remaining != len(pc.got) || pc.unasked != len(pc.got) {
		t.Fatalf("after the timeout: owner %v, senders %v, remaining %d, unasked %d of %d blocks",
			pc.owner != nil, pc.contributors(), pc.remaining, pc.unasked, len(pc.got))
	}
	ask(t, tor, q, len(pc.got), now)
	deliver(t, tor, p, stuck, now) // the late answer: wasted, no error
	for !pc.verifying {
		deliver(t, tor, q, pieceKey(t, q), now)
	}
	if from := pc.contributors(); len(from) != 1 || from[0] != q.c.addr.Addr() {
		t.Errorf("exclusive piece has senders %v, want only %v", from, q.c.addr.Addr())
	}
	tor.wg.Wait()
}

// A block for an exclusive piece from a peer that is not its owner is
// refused as wasted, not taken and not an error, however the peer came to
// have the request out.
func TestExclusivePieceRefusesOthersBlocks(t *testing.T) {
	tor, pc, ps := exclusiveSwarm(t, "127.0.246.21", "127.0.246.22")
	p, q := ps[0], ps[1]
	now := time.Now()
	ask(t, tor, q, 1, now)
	key := blockKey{0, 3 * wire.BlockSize}
	p.requests[key] = now // a request that predates q's ownership
	pc.askedBy[3] = append(pc.askedBy[3], p)
	pc.unasked--
	wasted := tor.stats.wasted
	deliver(t, tor, p, key, now)
	if pc.got[3] || tor.stats.wasted == wasted {
		t.Errorf("a non-owner's block was taken (got %v, wasted %d)", pc.got[3], tor.stats.wasted-wasted)
	}
	if len(pc.askedBy[3]) != 0 || pc.unasked != len(pc.got)-1 {
		t.Errorf("the refused block is still counted as asked: askedBy %d, unasked %d", len(pc.askedBy[3]), pc.unasked)
	}
}

// A block whose cancel a fast peer has not answered in requestTimeout may
// be asked of it again; then the peer owes two answers for it, and both
// are taken (one as the block, one as the cancel's answer) without
// dropping it.
func TestUnansweredCancelAskedAgain(t *testing.T) {
	tor, pc, ps := exclusiveSwarm(t, "127.0.246.71")
	p := ps[0]
	pc.exclusive = false
	now := time.Now()
	ask(t, tor, p, 1, now)
	key := pieceKey(t, p)
	tor.cancelRequest(p, key, now)
	asked := func(at time.Time) bool {
		for tor.requestFromProgress(p, at, false) {
		}
		_, ok := p.requests[key]
		return ok
	}
	if asked(now.Add(requestTimeout - time.Second)) {
		t.Fatal("asked again before requestTimeout")
	}
	later := now.Add(requestTimeout)
	if !asked(later) {
		t.Fatal("a block whose cancel went unanswered is never asked again")
	}
	deliver(t, tor, p, key, later) // the first request's answer, say
	b := int(key.begin / wire.BlockSize)
	if !pc.got[b] {
		t.Fatal("the block was not taken")
	}
	wasted := tor.stats.wasted
	deliver(t, tor, p, key, later) // the second's
	if tor.stats.wasted == wasted || len(p.cancelled) != 0 {
		t.Errorf("the second answer: wasted %d, cancelled %v", tor.stats.wasted-wasted, p.cancelled)
	}
	if tor.peers[p.c] != p {
		t.Error("the peer was dropped")
	}
}
