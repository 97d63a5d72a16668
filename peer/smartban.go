package peer

import (
	"crypto/sha1"
	"fmt"
	"net/netip"

	"node/peer/wire"
)

// maxSuspectBlocks bounds the block digests kept from pieces that failed
// their hash with several contributors (about 40 bytes each): enough for
// every block of 256 pieces of 1 MiB, and a bound on what a stream of bad
// pieces can make us hold.
const maxSuspectBlocks = 1 << 14

// suspectBlock is one block of a piece that failed its hash: who sent it
// and what it hashed to.
type suspectBlock struct {
	block int
	from  netip.Addr
	sum   [sha1.Size]byte
}

// Smart ban, as libtorrent's smart_ban plugin does it: when a piece with
// several contributors fails its hash, the digest of each block is kept
// with its sender. When the piece later verifies, every sender of a block
// that differs from the verified data is banned at once, rather than only
// once it happens to be the single source of a bad piece. Until then a
// liar keeps poisoning pieces, each costing a whole piece's worth of
// download and a re-fetch.

// blockSums digests each block of a complete piece buffer.
func blockSums(buf []byte) [][sha1.Size]byte {
	n := (len(buf) + wire.BlockSize - 1) / wire.BlockSize
	sums := make([][sha1.Size]byte, n)
	for b := range sums {
		sums[b] = sha1.Sum(buf[b*wire.BlockSize : min((b+1)*wire.BlockSize, len(buf))])
	}
	return sums
}

// recordSuspects keeps the digests of a failed piece's blocks, if the
// bound allows.
func (t *Torrent) recordSuspects(piece int, from []netip.Addr, sums [][sha1.Size]byte) {
	if t.suspectBlocks+len(sums) > maxSuspectBlocks {
		return
	}
	if t.suspects == nil {
		t.suspects = make(map[int][]suspectBlock)
	}
	for b, sum := range sums {
		if b < len(from) && from[b].IsValid() {
			t.suspects[piece] = append(t.suspects[piece], suspectBlock{block: b, from: from[b], sum: sum})
			t.suspectBlocks++
		}
	}
}

// liars returns the senders of recorded blocks of piece that differ from
// good, the digests of its verified blocks, and forgets the records.
func (t *Torrent) liars(piece int, good [][sha1.Size]byte) []netip.Addr {
	recs := t.suspects[piece]
	delete(t.suspects, piece)
	t.suspectBlocks -= len(recs)
	var out []netip.Addr
	for _, r := range recs {
		if r.block < len(good) && r.sum != good[r.block] && !containsAddr(out, r.from) {
			out = append(out, r.from)
		}
	}
	return out
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// purgeBlocks forgets the blocks a banned IP sent to pieces still being
// assembled: they are as likely to be bad as the one that got it banned,
// and each would cost a whole piece's hash failure to find out.
func (t *Torrent) purgeBlocks(ip netip.Addr) {
	if t.pk == nil {
		return
	}
	for _, pc := range t.pk.inProgress {
		if pc.verifying {
			continue
		}
		for b, from := range pc.from {
			if from != ip || !pc.got[b] {
				continue
			}
			pc.got[b] = false
			pc.from[b] = netip.Addr{}
			pc.remaining++
			if len(pc.askedBy[b]) == 0 {
				pc.unasked++
			}
		}
	}
}

// contributors are the distinct IPs whose blocks are in pc.
func (pc *pieceState) contributors() []netip.Addr {
	var out []netip.Addr
	for b, from := range pc.from {
		if pc.got[b] && from.IsValid() && !containsAddr(out, from) {
			out = append(out, from)
		}
	}
	return out
}

func banReason(piece int, alone bool) string {
	if alone {
		return fmt.Sprintf("sent data for piece %d that failed its hash", piece)
	}
	return fmt.Sprintf("sent a block of piece %d that differs from the verified data", piece)
}
