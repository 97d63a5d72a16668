package metadata

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Fetch tuning. A peer that has not answered a request in fetchRetryAfter
// is presumed to have dropped it (BEP 9 peers may ignore requests), and
// fetchMaxPerPeer outstanding requests keep a peer busy without letting one
// slow peer hold every piece.
const (
	fetchRetryAfter = 20 * time.Second
	fetchMaxPerPeer = 2
)

// ErrMetadataHash means the assembled metadata did not hash to the
// info-hash: at least one contributing peer sent bad data. Received returns
// it wrapped in a *MetadataHashError that names the contributors.
var ErrMetadataHash = errors.New("metadata does not match the info-hash")

// MetadataHashError is returned by Fetch.Received when the assembly fails
// the hash check. Any of Peers may be the liar; the caller should drop them
// all, since there is no way to tell which.
type MetadataHashError struct {
	InfoHash InfoHash
	Peers    []string // sorted, each once
}

func (e *MetadataHashError) Error() string {
	return fmt.Sprintf("%v: %s, from peers %q", ErrMetadataHash, e.InfoHash, e.Peers)
}

func (e *MetadataHashError) Unwrap() error { return ErrMetadataHash }

// ErrMetadataSize is wrapped by SetSize's errors.
var ErrMetadataSize = errors.New("bad metadata_size")

// fetchPiece is the state of one metadata piece.
type fetchPiece struct {
	data []byte // nil until received
	from string // who sent data

	// The latest request for it, if any. Only one peer is asked at a time;
	// after fetchRetryAfter another may be.
	askedPeer string
	askedAt   time.Time
	asked     bool

	// rejectedBy are peers that refused it: asking them again would only
	// loop. Forgotten when the peer goes or the fetch starts over.
	rejectedBy map[string]bool
}

// Fetch is the state of downloading one torrent's info dictionary from
// several peers (BEP 9). It is pure: the caller sends the requests Next
// suggests and feeds in what comes back. Peers are named by opaque strings
// (say, their address). Not safe for concurrent use.
type Fetch struct {
	ih     InfoHash
	size   int // adopted metadata_size; 0 until one is
	pieces []fetchPiece
	have   int

	info *Info
	err  error // the info dictionary hashed right but is invalid
}

// NewFetch starts fetching the info dictionary of ih.
func NewFetch(ih InfoHash) *Fetch { return &Fetch{ih: ih} }

// SetSize records a peer's metadata_size from its BEP 10 handshake. The
// first plausible size is adopted; a peer whose size is implausible or
// differs from the adopted one gets an error, and should be dropped. If the
// adopted size was a lie, the assembly fails the hash check and the liar is
// among the contributors.
func (f *Fetch) SetSize(peer string, size int) error {
	if size < 1 || size > MaxMetadataSize {
		return fmt.Errorf("%w: peer %s: %d not in 1..%d", ErrMetadataSize, peer, size, MaxMetadataSize)
	}
	if f.size == 0 {
		f.size = size
		f.pieces = make([]fetchPiece, (size+MetadataPieceSize-1)/MetadataPieceSize)
		return nil
	}
	if size != f.size {
		return fmt.Errorf("%w: peer %s: %d, others said %d", ErrMetadataSize, peer, size, f.size)
	}
	return nil
}

// Size returns the adopted metadata size, 0 if none yet.
func (f *Fetch) Size() int { return f.size }

// NumPieces returns the number of metadata pieces, 0 while the size is
// unknown.
func (f *Fetch) NumPieces() int { return (f.size + MetadataPieceSize - 1) / MetadataPieceSize }

// pieceLen is the exact length of metadata piece i.
func (f *Fetch) pieceLen(i int) int {
	if i == len(f.pieces)-1 {
		return f.size - i*MetadataPieceSize
	}
	return MetadataPieceSize
}

// live reports whether piece p has a request that is not yet presumed lost.
func (p *fetchPiece) live(now time.Time) bool {
	return p.asked && now.Sub(p.askedAt) < fetchRetryAfter
}

// Next returns the next piece to request from peer and records the
// request, or ok=false if nothing is useful from it now. Pieces nobody has
// been asked for come first, in order, so that peers asking in turn get
// different pieces; a piece whose request has gone unanswered for
// fetchRetryAfter can be asked of anyone.
func (f *Fetch) Next(peer string, now time.Time) (piece int, ok bool) {
	if f.Done() || f.size == 0 {
		return 0, false
	}
	outstanding := 0
	for i := range f.pieces {
		p := &f.pieces[i]
		if p.data == nil && p.askedPeer == peer && p.live(now) {
			outstanding++
		}
	}
	if outstanding >= fetchMaxPerPeer {
		return 0, false
	}
	pick := -1
	for i := range f.pieces {
		p := &f.pieces[i]
		if p.data != nil || p.live(now) || p.rejectedBy[peer] {
			continue
		}
		if !p.asked {
			pick = i
			break
		}
		if pick < 0 {
			pick = i // timed out: a retry, unless a fresh piece turns up
		}
	}
	if pick < 0 {
		return 0, false
	}
	p := &f.pieces[pick]
	p.asked, p.askedPeer, p.askedAt = true, peer, now
	return pick, true
}

// Received stores the data of a piece from peer. A piece with an index out
// of range or the wrong length is refused with an error and changes
// nothing; a piece already held is ignored. When the last piece arrives the
// assembly is checked against the info-hash: on a mismatch everything
// starts over and a *MetadataHashError names the contributors; on a match
// Done becomes true, and Info returns the parsed info dictionary (or why it
// is invalid, which Received also returns).
func (f *Fetch) Received(peer string, piece int, data []byte) error {
	if f.Done() {
		return nil
	}
	if f.size == 0 {
		return fmt.Errorf("metadata piece %d from %s before any metadata_size", piece, peer)
	}
	if piece < 0 || piece >= len(f.pieces) {
		return fmt.Errorf("metadata piece %d from %s: out of range 0..%d", piece, peer, len(f.pieces)-1)
	}
	if want := f.pieceLen(piece); len(data) != want {
		return fmt.Errorf("metadata piece %d from %s: %d bytes, want %d", piece, peer, len(data), want)
	}
	p := &f.pieces[piece]
	if p.data != nil {
		return nil
	}
	// Copied: the caller's buffer is likely reused for the next message.
	p.data = slices.Clone(data)
	p.from = peer
	p.asked = false
	f.have++
	if f.have < len(f.pieces) {
		return nil
	}

	raw := make([]byte, 0, f.size)
	for i := range f.pieces {
		raw = append(raw, f.pieces[i].data...)
	}
	if InfoHash(sha1.Sum(raw)) != f.ih {
		err := &MetadataHashError{InfoHash: f.ih, Peers: f.contributors()}
		f.reset()
		return err
	}
	f.pieces = nil // the assembly lives on in Info.Raw or not at all
	f.info, f.err = ParseInfo(raw)
	if f.err != nil {
		return fmt.Errorf("metadata for %s: %w", f.ih, f.err)
	}
	return nil
}

// contributors are the peers that sent any piece, sorted, each once.
func (f *Fetch) contributors() []string {
	var peers []string
	for i := range f.pieces {
		if f.pieces[i].data != nil {
			peers = append(peers, f.pieces[i].from)
		}
	}
	slices.Sort(peers)
	return slices.Compact(peers)
}

// reset forgets every piece and request, keeping the adopted size.
func (f *Fetch) reset() {
	clear(f.pieces)
	f.have = 0
}

// Rejected records that peer refused piece: it may be asked of others at
// once, but not of peer again.
func (f *Fetch) Rejected(peer string, piece int) {
	if piece < 0 || piece >= len(f.pieces) {
		return
	}
	p := &f.pieces[piece]
	if p.asked && p.askedPeer == peer {
		p.asked = false
	}
	if p.rejectedBy == nil {
		p.rejectedBy = make(map[string]bool)
	}
	p.rejectedBy[peer] = true
}

// PeerGone frees the requests of a disconnected peer, so that others may be
// asked at once.
func (f *Fetch) PeerGone(peer string) {
	for i := range f.pieces {
		p := &f.pieces[i]
		if p.asked && p.askedPeer == peer {
			p.asked = false
		}
		delete(p.rejectedBy, peer)
	}
}

// Done reports whether the fetch is over: the metadata hashed right.
func (f *Fetch) Done() bool { return f.info != nil || f.err != nil }

// Info returns the fetched info dictionary once Done, or why it is
// unusable.
func (f *Fetch) Info() (*Info, error) {
	switch {
	case f.info != nil:
		return f.info, nil
	case f.err != nil:
		return nil, f.err
	}
	return nil, fmt.Errorf("metadata for %s: not complete (%d of %d pieces)", f.ih, f.have, f.NumPieces())
}
