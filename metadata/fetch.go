package metadata

import (
	"cmp"
	"crypto/sha1"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Fetch tuning. A peer that has not answered a request in fetchRetryAfter
// is presumed to have dropped it (BEP 9 peers may ignore requests), and
// fetchMaxPerPeer outstanding requests keep a peer busy without letting one
// slow peer hold every piece. fetchRetryAfter is also how long a size, or
// the one peer whose turn it is, may go without delivering a piece before
// it gives way (see SetRetryAfter).
const (
	fetchRetryAfter = 20 * time.Second
	fetchMaxPerPeer = 2
)

// A peer that refused a piece is not asked for it again for
// fetchRejectRetry, doubled at each further refusal of that piece up to
// fetchRejectRetryMax. A refusal is not final: libtorrent refuses when its
// queues are full, and a magnet whose only seeder refused once must not
// hang.
const (
	fetchRejectRetry    = 2 * time.Second
	fetchRejectRetryMax = time.Minute
)

// MaxCandidateSizes caps the distinct metadata sizes fetched at once.
// Peers are asked only for pieces of the size they claimed, so a liar
// about the size delays nobody; each size holds at most its own bytes, so
// a fetch holds at most MaxCandidateSizes × MaxMetadataSize. When more
// sizes are claimed, those with the most claimants (distinct IPv4
// addresses or IPv6 /64s) are fetched first, so one liar cannot crowd out
// the size the swarm agrees on; and a size that delivers no piece for the
// retry time gives its place to one that waits, so that no crowd of liars
// can keep the true size out for good.
const MaxCandidateSizes = 4

// ErrMetadataHash means the assembled metadata did not hash to the
// info-hash: at least one contributing peer sent bad data. Received returns
// it wrapped in a *MetadataHashError.
var ErrMetadataHash = errors.New("metadata does not match the info-hash")

// MetadataHashError is returned by Fetch.Received when an assembly fails
// the hash check. With a single contributor, that peer lied (about the
// size or the data) and is named as Culprit: it is no longer asked, and the
// caller should drop or ban it. With several, Culprit is empty and nobody
// is blamed yet: the size is fetched again one peer at a time, so that the
// next failure has a single culprit, and liars among Peers that a later
// success exposes are listed by Liars.
type MetadataHashError struct {
	InfoHash InfoHash
	Size     int      // the metadata_size the assembly was for
	Peers    []string // the contributors, sorted, each once
	Culprit  string   // the proven liar, if the assembly had one contributor
}

func (e *MetadataHashError) Error() string {
	if e.Culprit != "" {
		return fmt.Sprintf("%v: %s, size %d, all from peer %q", ErrMetadataHash, e.InfoHash, e.Size, e.Culprit)
	}
	return fmt.Sprintf("%v: %s, size %d, from peers %q", ErrMetadataHash, e.InfoHash, e.Size, e.Peers)
}

func (e *MetadataHashError) Unwrap() error { return ErrMetadataHash }

// ErrMetadataSize is wrapped by SetSize's errors.
var ErrMetadataSize = errors.New("bad metadata_size")

// fetchPiece is the state of one metadata piece of one candidate size.
type fetchPiece struct {
	data []byte // nil until received
	from string // who sent data

	// The latest request for it, if any. Only one peer is asked at a time;
	// after fetchRetryAfter another may be.
	askedPeer string
	askedAt   time.Time
	asked     bool

	// askedOf are the peers whose request for it is unanswered: only
	// their data is taken, so that nobody can slip junk into a piece it
	// was never asked for. A late answer after a retry still counts.
	askedOf map[string]bool

	// rejectedBy are peers that refused it, and until when they are not
	// asked again. Forgotten when the peer goes or the size starts over.
	rejectedBy map[string]rejection
}

type rejection struct {
	until time.Time
	n     int // refusals so far: the backoff doubles with each
}

// sizeGroup is the fetch of the metadata for one claimed size, from the
// peers that claimed it.
type sizeGroup struct {
	size   int
	pieces []fetchPiece
	have   int

	// since is when the size last got a piece, or was first asked for
	// one: a size that gets nothing for the retry time gives its place to
	// a waiting one. progressed records a piece until Next, which knows
	// the time, moves since (and ownerAt).
	since      time.Time
	progressed bool

	// exclusive is set by a hash failure with several contributors: from
	// then on one peer (owner) fetches every piece, so that a failure
	// names a single culprit. An owner that rejects, stalls or goes is
	// passed over (passed) and the pieces start over with the next.
	// ownerAt is when the owner got its turn or last delivered a piece:
	// an owner that delivers nothing for the retry time loses its turn,
	// whoever asks, so that no peer can hold it by merely staying.
	exclusive bool
	owner     string
	ownerAt   time.Time
	passed    map[string]bool

	// suspects are the pieces of the failed shared assembly: once the
	// metadata is known, those that differ from it expose their senders.
	suspects []suspectPiece
}

type suspectPiece struct {
	piece int
	from  string
	sum   [sha1.Size]byte
}

// Fetch is the state of downloading one torrent's info dictionary from
// several peers (BEP 9). It is pure: the caller sends the requests Next
// suggests and feeds in what comes back. Peers are named by opaque strings;
// a name that parses as an IP address and port counts as that IP when
// claimants are counted, so several connections from one host are one
// vote. Not safe for concurrent use.
type Fetch struct {
	ih     InfoHash
	claims map[string]int // peer: the metadata_size it claimed
	groups map[int]*sizeGroup
	// order breaks ties between sizes claimed by as many IPs: the first
	// claimed wins, so that a newcomer does not displace a fetch in
	// progress.
	order map[int]uint64
	seq   uint64
	// benched are the sizes that gave their place up for getting nothing,
	// by when (a seq): they rank after every other size, the longest
	// benched first, so that the sizes take turns.
	benched map[int]uint64

	retryAfter time.Duration

	info  *Info
	err   error    // the info dictionary hashed right but is invalid
	liars []string // exposed by the success, see Liars
}

// NewFetch starts fetching the info dictionary of ih.
func NewFetch(ih InfoHash) *Fetch {
	return &Fetch{
		ih:         ih,
		claims:     make(map[string]int),
		groups:     make(map[int]*sizeGroup),
		order:      make(map[int]uint64),
		benched:    make(map[int]uint64),
		retryAfter: fetchRetryAfter,
	}
}

// SetRetryAfter changes the time after which an unanswered request is
// presumed lost, and a size or a peer's turn that delivers nothing gives
// way (default 20 s). Tests shorten it.
func (f *Fetch) SetRetryAfter(d time.Duration) {
	if d > 0 {
		f.retryAfter = d
	}
}

// SetSize records a peer's metadata_size from its BEP 10 handshake; a
// later call for the same peer replaces its claim. An implausible size is
// an error (the peer should be dropped). Disagreeing is not: each size is
// fetched from the peers that claimed it, and the one that hashes right
// wins.
func (f *Fetch) SetSize(peer string, size int) error {
	if size < 1 || size > MaxMetadataSize {
		return fmt.Errorf("%w: peer %s: %d not in 1..%d", ErrMetadataSize, peer, size, MaxMetadataSize)
	}
	if f.Done() {
		return nil
	}
	if old, ok := f.claims[peer]; ok {
		if old == size {
			return nil
		}
		f.forget(peer, false)
	}
	f.claims[peer] = size
	if _, ok := f.order[size]; !ok {
		f.seq++
		f.order[size] = f.seq
	}
	f.regroup()
	return nil
}

// source is what a claimant counts as if peer is an address: its IPv4
// address or IPv6 /64, as one host usually has a whole /64 to itself.
func source(peer string) string {
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		return peer
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ranked returns the claimed sizes best first: those never benched before
// the benched, the longest benched first; then most claimants (distinct
// sources) first; ties to the earliest claimed.
func (f *Fetch) ranked() []int {
	srcs := make(map[int]map[string]bool)
	for p, size := range f.claims {
		if srcs[size] == nil {
			srcs[size] = make(map[string]bool)
		}
		srcs[size][source(p)] = true
	}
	sizes := make([]int, 0, len(srcs))
	for size := range srcs {
		sizes = append(sizes, size)
	}
	slices.SortFunc(sizes, func(a, b int) int {
		if c := cmp.Compare(f.benched[a], f.benched[b]); c != 0 {
			return c
		}
		if c := cmp.Compare(len(srcs[b]), len(srcs[a])); c != 0 {
			return c
		}
		return cmp.Compare(f.order[a], f.order[b])
	})
	return sizes
}

// regroup forgets sizes nobody claims any more and fetches the
// MaxCandidateSizes best-ranked sizes. A size that holds pieces keeps its
// place whatever its rank, so that nobody can throw away a fetch in
// progress by claiming sizes; it gives way only when it stalls (rotate).
func (f *Fetch) regroup() {
	sizes := f.ranked()
	for size := range f.order {
		if !slices.Contains(sizes, size) {
			delete(f.order, size)
			delete(f.benched, size)
		}
	}
	best := sizes[:min(len(sizes), MaxCandidateSizes)]
	for size, g := range f.groups {
		if !slices.Contains(sizes, size) || !slices.Contains(best, size) && !g.busy() {
			delete(f.groups, size)
		}
	}
	for _, size := range best {
		if f.groups[size] == nil && len(f.groups) < MaxCandidateSizes {
			f.groups[size] = &sizeGroup{size: size, pieces: make([]fetchPiece, (size+MetadataPieceSize-1)/MetadataPieceSize)}
		}
	}
}

// busy reports whether g holds something that giving up its place would
// throw away.
func (g *sizeGroup) busy() bool { return g.have > 0 || g.exclusive }

// rotate notes the groups' progress, and benches the groups that got
// nothing for the retry time while other sizes wait for a place.
func (f *Fetch) rotate(now time.Time) {
	waiting := len(f.order) > len(f.groups)
	stalled := false
	for size, g := range f.groups {
		switch {
		case g.progressed:
			g.since, g.ownerAt, g.progressed = now, now, false
		case g.since.IsZero():
			g.since = now
		case waiting && now.Sub(g.since) >= f.retryAfter:
			f.seq++
			f.benched[size] = f.seq
			delete(f.groups, size)
			stalled = true
		}
	}
	if stalled {
		f.regroup()
	}
}

// Size returns the metadata size with the most claimants (of those not
// benched for delivering nothing, if any), 0 if none yet.
func (f *Fetch) Size() int {
	if s := f.ranked(); len(s) > 0 {
		return s[0]
	}
	return 0
}

// NumPieces returns the number of metadata pieces of Size, 0 while the
// size is unknown.
func (f *Fetch) NumPieces() int { return (f.Size() + MetadataPieceSize - 1) / MetadataPieceSize }

// group is the fetch peer takes part in, nil if none.
func (f *Fetch) group(peer string) *sizeGroup {
	size, ok := f.claims[peer]
	if !ok {
		return nil
	}
	return f.groups[size]
}

// pieceLen is the exact length of metadata piece i.
func (g *sizeGroup) pieceLen(i int) int {
	if i == len(g.pieces)-1 {
		return g.size - i*MetadataPieceSize
	}
	return MetadataPieceSize
}

// reset forgets every piece and request of the size, keeping its mode.
func (g *sizeGroup) reset() {
	clear(g.pieces)
	g.have = 0
}

// pass takes the turn from the owner and starts the pieces over: what it
// sent must not be mixed with the next owner's.
func (g *sizeGroup) pass() {
	if g.passed == nil {
		g.passed = make(map[string]bool)
	}
	g.passed[g.owner] = true
	g.owner = ""
	g.reset()
}

// live reports whether piece p has a request that is not yet presumed lost.
func (f *Fetch) live(p *fetchPiece, now time.Time) bool {
	return p.asked && now.Sub(p.askedAt) < f.retryAfter
}

// turn reports whether peer may be asked for pieces of exclusive group g,
// making it the owner if nobody is. The owner loses its turn when one of
// its requests goes unanswered for the retry time or it delivers nothing
// for as long, whoever asks: were the owner's own asking to renew its
// requests, a liar that asks often would keep the turn for ever.
func (f *Fetch) turn(g *sizeGroup, peer string, now time.Time) bool {
	if g.owner != "" && f.stalled(g, now) {
		g.pass()
	}
	if g.owner != "" {
		return g.owner == peer
	}
	if g.passed[peer] {
		for p, size := range f.claims {
			if size == g.size && !g.passed[p] {
				return false // someone else's turn first
			}
		}
		clear(g.passed) // everyone had one: round again
	}
	g.owner, g.ownerAt = peer, now
	return true
}

// stalled reports whether g's owner has had its turn for nothing.
func (f *Fetch) stalled(g *sizeGroup, now time.Time) bool {
	if now.Sub(g.ownerAt) >= f.retryAfter {
		return true
	}
	for i := range g.pieces {
		p := &g.pieces[i]
		if p.asked && p.askedPeer == g.owner && !f.live(p, now) {
			return true
		}
	}
	return false
}

// Next returns the next piece to request from peer and records the
// request, or ok=false if nothing is useful from it now. A peer is asked
// only for pieces of the size it claimed. Pieces nobody has been asked
// for come first, in order, so that peers asking in turn get different
// pieces; a piece whose request has gone unanswered for the retry time
// can be asked of anyone. A peer that refused a piece is asked for it again
// only after a backoff.
func (f *Fetch) Next(peer string, now time.Time) (piece int, ok bool) {
	if f.Done() {
		return 0, false
	}
	f.rotate(now)
	g := f.group(peer)
	if g == nil {
		return 0, false
	}
	if g.exclusive && !f.turn(g, peer, now) {
		return 0, false
	}
	outstanding := 0
	for i := range g.pieces {
		p := &g.pieces[i]
		if p.data == nil && p.askedPeer == peer && f.live(p, now) {
			outstanding++
		}
	}
	if outstanding >= fetchMaxPerPeer {
		return 0, false
	}
	pick := -1
	for i := range g.pieces {
		p := &g.pieces[i]
		if p.data != nil || f.live(p, now) || now.Before(p.rejectedBy[peer].until) {
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
	p := &g.pieces[pick]
	p.asked, p.askedPeer, p.askedAt = true, peer, now
	if p.askedOf == nil {
		p.askedOf = make(map[string]bool)
	}
	p.askedOf[peer] = true
	return pick, true
}

// Received stores the data of a piece from peer. Data that peer was not
// asked for (or no longer is: the size started over) is ignored. Data of
// the wrong length is refused with an error and changes nothing; a piece
// already held is ignored. When the last piece of a size arrives the
// assembly is checked against the info-hash: on a mismatch the size starts
// over and a *MetadataHashError says who to blame; on a match Done becomes
// true, and Info returns the parsed info dictionary (or why it is invalid,
// which Received also returns).
func (f *Fetch) Received(peer string, piece int, data []byte) error {
	g := f.group(peer)
	if f.Done() || g == nil || piece < 0 || piece >= len(g.pieces) {
		return nil
	}
	p := &g.pieces[piece]
	if !p.askedOf[peer] {
		return nil
	}
	if want := g.pieceLen(piece); len(data) != want {
		return fmt.Errorf("metadata piece %d from %s: %d bytes, want %d", piece, peer, len(data), want)
	}
	if p.data != nil {
		delete(p.askedOf, peer)
		return nil
	}
	// Copied: the caller's buffer is likely reused for the next message.
	p.data = slices.Clone(data)
	p.from = peer
	p.asked = false
	p.askedOf = nil // any other answer is too late
	g.have++
	g.progressed = true
	if g.have < len(g.pieces) {
		return nil
	}

	raw := make([]byte, 0, g.size)
	for i := range g.pieces {
		raw = append(raw, g.pieces[i].data...)
	}
	if InfoHash(sha1.Sum(raw)) != f.ih {
		return f.hashFailed(g)
	}
	f.liars = g.expose(raw)
	f.groups, f.claims, f.order, f.benched = nil, nil, nil, nil // the assembly lives on in Info.Raw or not at all
	f.info, f.err = ParseInfo(raw)
	if f.err != nil {
		return fmt.Errorf("metadata for %s: %w", f.ih, f.err)
	}
	return nil
}

// hashFailed starts g over after its assembly failed the hash check.
func (f *Fetch) hashFailed(g *sizeGroup) error {
	err := &MetadataHashError{InfoHash: f.ih, Size: g.size, Peers: g.contributors()}
	if len(err.Peers) == 1 {
		err.Culprit = err.Peers[0]
		g.reset()
		f.forget(err.Culprit, true)
		delete(f.claims, err.Culprit)
		f.regroup()
		return err
	}
	g.suspects = g.suspects[:0]
	for i := range g.pieces {
		p := &g.pieces[i]
		g.suspects = append(g.suspects, suspectPiece{piece: i, from: p.from, sum: sha1.Sum(p.data)})
	}
	g.exclusive, g.owner = true, ""
	g.reset()
	return err
}

// expose returns the senders of suspect pieces that differ from raw, the
// verified metadata, sorted, each once.
func (g *sizeGroup) expose(raw []byte) []string {
	var liars []string
	for _, s := range g.suspects {
		start := s.piece * MetadataPieceSize
		if sha1.Sum(raw[start:start+g.pieceLen(s.piece)]) != s.sum {
			liars = append(liars, s.from)
		}
	}
	slices.Sort(liars)
	return slices.Compact(liars)
}

// Liars returns, once Done, the peers whose pieces in an earlier failed
// assembly differ from the verified metadata: they lied, and the caller
// should ban them.
func (f *Fetch) Liars() []string { return f.liars }

// contributors are the peers that sent any piece of g, sorted, each once.
func (g *sizeGroup) contributors() []string {
	var peers []string
	for i := range g.pieces {
		if g.pieces[i].data != nil {
			peers = append(peers, g.pieces[i].from)
		}
	}
	slices.Sort(peers)
	return slices.Compact(peers)
}

// Rejected records that peer refused piece at now: it may be asked of
// others at once, and of peer again after fetchRejectRetry, twice as long
// at each further refusal. An owner that refuses a piece passes its turn.
// It reports whether the refusal freed a request of ours, so that the
// caller asks the others now: only then, so that a stream of refusals
// costs no more than the requests we sent.
func (f *Fetch) Rejected(peer string, piece int, now time.Time) (freed bool) {
	g := f.group(peer)
	if g == nil || piece < 0 || piece >= len(g.pieces) {
		return false
	}
	if g.exclusive && g.owner == peer {
		g.pass()
		return true
	}
	p := &g.pieces[piece]
	delete(p.askedOf, peer)
	if p.asked && p.askedPeer == peer {
		p.asked = false
		freed = true
	}
	if p.rejectedBy == nil {
		p.rejectedBy = make(map[string]rejection)
	}
	r := p.rejectedBy[peer]
	r.n++
	d := fetchRejectRetry
	for i := 1; i < r.n && d < fetchRejectRetryMax; i++ {
		d *= 2
	}
	r.until = now.Add(min(d, fetchRejectRetryMax))
	p.rejectedBy[peer] = r
	return freed
}

// forget drops peer's requests and refusals in the size it claimed. Its
// lost turns are remembered while it is connected (gone false), so that
// a peer cannot win a fresh turn by taking back and renewing its claim.
func (f *Fetch) forget(peer string, gone bool) {
	if gone {
		for _, g := range f.groups {
			delete(g.passed, peer)
		}
	}
	g := f.group(peer)
	if g == nil {
		return
	}
	if g.exclusive && g.owner == peer {
		g.pass()
	}
	for i := range g.pieces {
		p := &g.pieces[i]
		if p.asked && p.askedPeer == peer {
			p.asked = false
		}
		delete(p.askedOf, peer)
		delete(p.rejectedBy, peer)
	}
}

// PeerGone forgets a disconnected peer: its requests may be asked of
// others at once, and its claim no longer counts.
func (f *Fetch) PeerGone(peer string) { f.withdraw(peer, true) }

// Withdraw takes back the claim of a peer that no longer offers the
// metadata (a later BEP 10 handshake without ut_metadata): as PeerGone,
// except that a turn it lost stays lost.
func (f *Fetch) Withdraw(peer string) { f.withdraw(peer, false) }

func (f *Fetch) withdraw(peer string, gone bool) {
	if f.Done() {
		return
	}
	f.forget(peer, gone)
	if _, ok := f.claims[peer]; ok {
		delete(f.claims, peer)
		f.regroup()
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
	return nil, fmt.Errorf("metadata for %s: not complete (size %d, %d pieces)", f.ih, f.Size(), f.NumPieces())
}

// Asked reports whether peer has an unanswered request for piece: data
// for it from peer would be taken (if not already held). The caller may
// use it to tell an answer from a piece sent unasked.
func (f *Fetch) Asked(peer string, piece int) bool {
	g := f.group(peer)
	if f.Done() || g == nil || piece < 0 || piece >= len(g.pieces) {
		return false
	}
	return g.pieces[piece].askedOf[peer]
}
