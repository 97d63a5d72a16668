package peer

import (
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/metadata"
	"node/peer/wire"
)

// metaPeer dials our torrent at to from ip and trades BEP 10 handshakes
// offering ut_metadata; it returns the peer and our ut_metadata ID, whose
// answer to a request marks the point up to which its earlier messages
// were handled.
func metaPeer(t *testing.T, ip string, to netip.AddrPort, ih metadata.InfoHash) (*adversary.Peer, int) {
	t.Helper()
	p := dialAdversary(t, ip, to, ih)
	if err := p.SendExtHandshake(adversary.MetadataHandshake(0)); err != nil {
		t.Fatal(err)
	}
	id, err := p.TheirMetaID(10 * time.Second)
	if err != nil || id == 0 {
		t.Fatalf("our ut_metadata ID: %d, %v", id, err)
	}
	return p, id
}

// chokesUntilBarrier asks for metadata piece 0 and counts the unchokes and
// chokes that come before its answer.
func chokesUntilBarrier(t *testing.T, p *adversary.Peer, id int) (unchokes, chokes int) {
	t.Helper()
	if err := p.SendMetadata(id, metadata.MetadataMsg{Type: 0, Piece: 0}, nil); err != nil {
		t.Fatal(err)
	}
	err := p.ReadUntil(10*time.Second, func(m wire.Message) bool {
		switch m.Type {
		case wire.Unchoke:
			unchokes++
		case wire.Choke:
			chokes++
		case wire.Extended:
			return m.ExtendedID == adversary.MetaID
		}
		return false
	})
	if err != nil {
		t.Fatalf("no answer to the metadata request: %v", err)
	}
	return unchokes, chokes
}

// A choked peer that becomes interested while an upload slot is free is
// unchoked at once: this torrent never ticks after its first, so the old
// wait for the next tick's choker left it choked. A peer toggling its
// interest a hundred times is unchoked once and never choked; one that
// comes when the only slot is taken stays choked until a tick.
func TestUnchokeOnInterestWithoutTick(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 4 * wire.BlockSize}, 1<<20)
	ln := listenTCP(t, "127.0.212.1:0")
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
		NoDownload: true, UploadSlots: 1, tickEvery: time.Hour})

	a, idA := metaPeer(t, "127.0.212.2", addrOf(ln.Addr()), mi.Info.InfoHash)
	for range 100 {
		_ = a.Send(&wire.Message{Type: wire.Interested})
		_ = a.Send(&wire.Message{Type: wire.NotInterested})
	}
	_ = a.Send(&wire.Message{Type: wire.Interested})
	if u, c := chokesUntilBarrier(t, a, idA); u != 1 || c != 0 {
		t.Fatalf("toggling peer: %d unchokes and %d chokes, want 1 and 0", u, c)
	}

	b, idB := metaPeer(t, "127.0.212.3", addrOf(ln.Addr()), mi.Info.InfoHash)
	_ = b.Send(&wire.Message{Type: wire.Interested})
	if u, _ := chokesUntilBarrier(t, b, idB); u != 0 {
		t.Fatalf("a peer with the only slot taken was unchoked before a tick")
	}
}

// Two peers taking turns at being interested could each find a slot free
// at every turn (the one no longer interested keeps its slot until a run
// of the choker chokes it), and make the choker run on every 5 bytes
// they send: between two ticks, unchokeIfFree runs it at most
// UploadSlots times. This torrent never ticks after its first.
func TestUnchokeRunsBoundedBetweenTicks(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 4 * wire.BlockSize}, 1<<20)
	ln := listenTCP(t, "127.0.213.1:0")
	const slots = 4
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
		NoDownload: true, UploadSlots: slots, tickEvery: time.Hour})

	x, idX := metaPeer(t, "127.0.213.2", addrOf(ln.Addr()), mi.Info.InfoHash)
	y, idY := metaPeer(t, "127.0.213.3", addrOf(ln.Addr()), mi.Info.InfoHash)
	unchokes := 0
	turn := func(p *adversary.Peer, id int, typ wire.MessageType) {
		_ = p.Send(&wire.Message{Type: typ})
		u, _ := chokesUntilBarrier(t, p, id)
		unchokes += u
	}
	for range 50 {
		turn(x, idX, wire.NotInterested)
		turn(y, idY, wire.Interested)
		turn(y, idY, wire.NotInterested)
		turn(x, idX, wire.Interested)
	}
	if unchokes != slots {
		t.Fatalf("%d unchokes between two ticks, want %d: one per run of the choker, at most UploadSlots runs", unchokes, slots)
	}
}
