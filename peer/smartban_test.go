package peer

import (
	"bytes"
	"crypto/sha1"
	"net/netip"
	"testing"

	"node/peer/wire"
)

// A piece failed with blocks from two peers; once it verifies, only the
// sender of the block that differs is named, and the records are gone.
func TestSmartBanNamesTheLiar(t *testing.T) {
	honest, liar := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	good := bytes.Repeat([]byte{7}, 4*wire.BlockSize)
	bad := bytes.Clone(good)
	bad[2*wire.BlockSize+5] ^= 1 // the liar's block 2
	tor := &Torrent{}
	tor.recordSuspects(9, []netip.Addr{honest, honest, liar, honest}, blockSums(bad))
	if tor.suspectBlocks != 4 {
		t.Fatalf("%d blocks recorded, want 4", tor.suspectBlocks)
	}
	got := tor.liars(9, blockSums(good))
	if len(got) != 1 || got[0] != liar {
		t.Fatalf("liars %v, want [%v]", got, liar)
	}
	if tor.suspectBlocks != 0 || len(tor.suspects) != 0 {
		t.Fatalf("records left: %d blocks, %d pieces", tor.suspectBlocks, len(tor.suspects))
	}
}

// maxSuspectBlocks holds: a piece whose blocks would take the records past
// it is not recorded, one that fits is.
func TestMaxSuspectBlocksBound(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	tor := &Torrent{}
	per := 16
	from := make([]netip.Addr, per)
	for i := range from {
		from[i] = ip
	}
	sums := make([][sha1.Size]byte, per)
	for p := 0; p < maxSuspectBlocks/per; p++ {
		tor.recordSuspects(p, from, sums)
	}
	if tor.suspectBlocks != maxSuspectBlocks {
		t.Fatalf("%d blocks recorded, want the bound %d", tor.suspectBlocks, maxSuspectBlocks)
	}
	tor.recordSuspects(maxSuspectBlocks, from[:1], sums[:1])
	if tor.suspectBlocks != maxSuspectBlocks || tor.suspects[maxSuspectBlocks] != nil {
		t.Fatalf("recorded past the bound: %d blocks", tor.suspectBlocks)
	}
}

// A banned peer's blocks leave the pieces being assembled, which ask for
// them again, and the running hash starts over if it had taken one.
func TestPurgeBlocksOfBannedPeer(t *testing.T) {
	honest, liar := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	pc := &pieceState{
		index: 0, got: []bool{true, true, true, false}, askedBy: make([][]*peerState, 4),
		from: []netip.Addr{honest, liar, honest, {}}, remaining: 1, unasked: 1,
	}
	tor := &Torrent{pk: newPicker(1)}
	tor.pk.inProgress[0] = pc
	tor.purgeBlocks(liar)
	if pc.got[1] || pc.from[1].IsValid() || pc.remaining != 2 || pc.unasked != 2 {
		t.Fatalf("after the purge: got %v from %v remaining %d unasked %d", pc.got, pc.from, pc.remaining, pc.unasked)
	}
	if c := pc.contributors(); len(c) != 1 || c[0] != honest {
		t.Fatalf("contributors %v, want [%v]", c, honest)
	}
}
