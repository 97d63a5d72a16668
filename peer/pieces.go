package peer

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"node/metadata"
	"node/peer/wire"
	"node/storage"
)

const (
	endgameDup = 2 // at most this many peers asked for one block in endgame
	// maxWriting is how many complete pieces may wait for their hash check
	// and write before no new piece is started: when the disk (or the CPU
	// for hashing) falls behind the network, that is where the memory of
	// a download would otherwise pile up.
	maxWriting = 4
	// maxCancelled bounds the cancelled requests kept per peer, whose late
	// answers are expected (see peerState.cancelled): two of the deepest
	// pipelines. A fast peer answers each cancel, at once when the
	// request is still queued; one that owes more has stopped answering.
	maxCancelled = 2 * maxPipeline
)

// pieceState is a piece being downloaded. Its blocks are kept in memory
// until the whole piece hashes right: nothing unverified touches the disk.
type pieceState struct {
	index     int
	raw, buf  []byte // buf: the piece, within raw (see pieceBuf)
	got       []bool
	askedBy   [][]*peerState // per block: peers with a request out for it
	remaining int
	// unasked counts blocks neither received nor asked of anyone, so
	// that filling a pipeline skips fully requested pieces at once.
	unasked int
	// from is who sent each block in buf: if the hash fails, one of them
	// lied (see smartban.go).
	from []netip.Addr
	// exclusive, after a hash failure with several contributors, makes one
	// peer fetch the whole piece so the next failure has a single culprit.
	exclusive bool
	owner     *peerState
	verifying bool
}

func (t *Torrent) setInfo(info *metadata.Info) error {
	st, err := storage.Open(t.cfg.Dir, info)
	if err != nil {
		if errors.Is(err, metadata.ErrUnsafePath) {
			return fmt.Errorf("%w: %w", ErrBadMetadata, err)
		}
		return fmt.Errorf("opening files: %w", err)
	}
	st.SetDirectIO(!t.cfg.OSCache)
	st.SetOverwrite(t.cfg.Overwrite)
	// Cut short if the torrent stops: a large torrent's check takes
	// minutes.
	n, fast, err := st.RecoverContext(t.ctx)
	if errors.Is(err, storage.ErrForeignData) && (t.cfg.NoDownload || t.cfg.MetadataOnly) {
		// Neither writes: other data only means missing pieces.
		t.log.Warn("files hold data that is not the torrent's; serving the pieces that verify", zap.Error(err))
		err = nil
	}
	if err != nil {
		st.Close()
		return fmt.Errorf("checking existing data: %w", err)
	}
	t.info, t.st = info, st
	if info.Private {
		t.dropUnlisted()
	}
	t.pk = newPicker(info.NumPieces())
	for i := 0; i < info.NumPieces(); i++ {
		if st.Complete(i) {
			t.pk.have.Set(i)
			t.pk.numHave++
		}
	}
	t.stats.metadataAt = time.Since(t.start)
	close(t.metaCh)
	t.log.Info("metadata", zap.String("name", info.Name), zap.Int("pieces", info.NumPieces()),
		zap.Int64("bytes", info.Length), zap.Int("resumed_pieces", n), zap.Bool("resume_file", fast))
	if t.cfg.MetadataOnly {
		t.cancel()
		return nil
	}
	now := time.Now()
	for c, ps := range t.peers {
		c.maxLen.Store(int64(t.maxMsgLen()))
		if err := t.adoptEarly(ps, now); err != nil {
			t.drop(c, err)
			continue
		}
		for i := 0; i < info.NumPieces(); i++ {
			if st.Complete(i) {
				c.send(&wire.Message{Type: wire.Have, Index: uint32(i)})
			}
		}
	}
	t.checkComplete()
	return nil
}

func (t *Torrent) checkComplete() {
	if !t.complete() {
		return
	}
	select {
	case <-t.doneCh:
		return
	default:
	}
	t.stats.completeAt = time.Since(t.start)
	err := t.st.SaveResume()
	if err != nil {
		t.log.Warn("saving resume data", zap.Error(err))
	}
	t.dirty = err != nil // for the next try, or Run's last
	t.freeBufs = nil
	close(t.doneCh)
	if t.ann != nil && t.stats.downloaded > 0 {
		// A download completed, not a seed that found its data on disk.
		t.saveProgress()
		t.ann.Completed()
	}
	for c, ps := range t.peers {
		if t.bothSeeds(ps) {
			t.drop(c, errBothSeeds)
			continue
		}
		t.updateInterest(ps)
	}
}

func (t *Torrent) blockCount(p int) int {
	return int((t.info.PieceSize(p) + wire.BlockSize - 1) / wire.BlockSize)
}

func (t *Torrent) blockLen(p, b int) int64 {
	return min(wire.BlockSize, t.info.PieceSize(p)-int64(b)*wire.BlockSize)
}

func (t *Torrent) bufferedBytes() int64 {
	return int64(len(t.pk.inProgress)) * t.info.PieceLength
}

// fillRequests tops up a peer's pipeline: blocks of pieces in progress
// first, then a newly picked piece, then, once nothing is left to start,
// endgame duplicates of blocks others are slow to deliver.
func (t *Torrent) fillRequests(ps *peerState, now time.Time) {
	if t.pk == nil || (ps.peerChoking && len(ps.allowedIn) == 0) || !ps.amInterest || t.cfg.NoDownload {
		return
	}
	if t.inBatch {
		// Within a batch of messages from ps: once, at its end (see
		// handle), so that the requests go out in one write.
		t.batching[ps] = true
		return
	}
	// The requests are encoded into one buffer and queued as one message:
	// the peer then reads them in one go, rather than waking up per
	// request.
	defer func() {
		if len(ps.reqBuf) > 0 {
			ps.c.queue(outMsg{b: ps.reqBuf})
			ps.reqBuf = nil
		}
	}()
	limit := t.pipelineDepth(ps) // see pipeline.go
	for len(ps.requests) < limit {
		if t.requestFromProgress(ps, now, false) {
			continue
		}
		if t.bufferedBytes() < max(t.cfg.BufferBudget, 2*t.info.PieceLength) && t.writing < maxWriting {
			if p, ok := t.pickFor(ps); ok {
				t.startPiece(p)
				continue
			}
		}
		// Endgame: nothing is left to start, so the last blocks are asked
		// of a second peer rather than waiting on the slowest one; only
		// as many as keep a drained pipeline busy (endgamePipeline), or
		// deep pipelines would ask again for nearly all they hold.
		if t.pk.n-t.pk.numHave-len(t.pk.inProgress) == 0 && len(ps.requests) < endgamePipeline && t.requestFromProgress(ps, now, true) {
			continue
		}
		return
	}
}

func (t *Torrent) startPiece(p int) {
	nb := t.blockCount(p)
	raw, buf := t.pieceBuf(p)
	t.pk.inProgress[p] = &pieceState{
		index: p, raw: raw, buf: buf,
		got: make([]bool, nb), askedBy: make([][]*peerState, nb),
		remaining: nb, unasked: nb, from: make([]netip.Addr, nb),
	}
}

// pieceBuf returns a buffer for piece p, re-using one of a finished piece
// when there is one: fresh memory for every piece of a large download is
// a page fault per 4 KiB and GC work for nothing. Its contents are stale,
// which is fine: every byte is received before the piece is hashed. It
// starts where storage's direct writes can take it without a copy.
func (t *Torrent) pieceBuf(p int) (raw, buf []byte) {
	if n := len(t.freeBufs); n > 0 {
		raw = t.freeBufs[n-1]
		t.freeBufs = t.freeBufs[:n-1]
	} else {
		raw = storage.NewAligned(int(t.info.PieceLength))
	}
	return raw, storage.Aligned(raw, t.st.BufferOffset(p), int(t.info.PieceSize(p)))
}

// freeBuf keeps a finished piece's buffer for the next piece, while
// downloading.
func (t *Torrent) freeBuf(b []byte) { // b: a raw buffer from pieceBuf
	if !t.complete() && int64(len(t.freeBufs)) < max(t.cfg.BufferBudget, 2*t.info.PieceLength)/t.info.PieceLength {
		t.freeBufs = append(t.freeBufs, b)
	}
}

// requestFromProgress asks ps for one block of a piece in progress; with
// endgame it may ask for a block already asked of another peer.
func (t *Torrent) requestFromProgress(ps *peerState, now time.Time, endgame bool) bool {
	for _, pc := range t.pk.inProgress {
		if pc.verifying || (!endgame && pc.unasked == 0) || !ps.mayAsk(pc.index) || (pc.exclusive && pc.owner != nil && pc.owner != ps) {
			continue
		}
		for b := range pc.got {
			if pc.got[b] {
				continue
			}
			asked := pc.askedBy[b]
			if len(asked) > 0 && (!endgame || len(asked) >= endgameDup || contains(asked, ps)) {
				continue
			}
			key := blockKey{pc.index, int64(b) * wire.BlockSize}
			if at, ok := ps.cancelled[key]; ok && ps.fast && now.Sub(at) < requestTimeout {
				// A fast peer answers our cancel (BEP 6): asked again
				// before that, it would owe two answers to one request
				// of ours. After requestTimeout without one, it is asked
				// again, or a block it never answers the cancel of is
				// never asked of it again; the cancel's record stays,
				// so that whichever of its two answers comes second is
				// taken as the cancel's (see onPiece and onReject).
				continue
			}
			if pc.exclusive {
				pc.owner = ps
			}
			if len(asked) == 0 {
				pc.unasked--
			}
			pc.askedBy[b] = append(asked, ps)
			ps.pipe.sent(key, now, len(ps.requests) == 0)
			ps.requests[key] = now
			m := wire.Message{Type: wire.Request, Index: uint32(pc.index), Begin: uint32(key.begin), Length: uint32(t.blockLen(pc.index, b))}
			ps.reqBuf = m.Append(ps.reqBuf)
			return true
		}
	}
	return false
}

func contains(ps []*peerState, p *peerState) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func remove(ps []*peerState, p *peerState) []*peerState {
	for i, x := range ps {
		if x == p {
			return append(ps[:i], ps[i+1:]...)
		}
	}
	return ps
}

// unask forgets that block b was asked of ps.
func (pc *pieceState) unask(b int, ps *peerState) {
	n := len(pc.askedBy[b])
	pc.askedBy[b] = remove(pc.askedBy[b], ps)
	if n > 0 && len(pc.askedBy[b]) == 0 && !pc.got[b] {
		pc.unasked++
	}
}

// releaseRequests forgets every request outstanding to ps (it choked us
// or went away), so other peers can be asked, and every piece only it was
// to fetch, whether or not it still had requests for it.
func (t *Torrent) releaseRequests(ps *peerState, now time.Time) {
	for key := range ps.requests {
		if pc := t.pk.inProgress[key.piece]; pc != nil {
			pc.unask(int(key.begin/wire.BlockSize), ps)
		}
		delete(ps.requests, key)
	}
	for _, pc := range t.pk.inProgress {
		if pc.owner == ps {
			t.releaseOwner(pc, now)
		}
	}
}

// releaseOwner opens pc, a piece only its owner was to fetch, to other
// peers. The owner's requests for it that are still out are cancelled,
// and the blocks it sent are dropped: the next owner fetches the whole
// piece, so that if it fails its hash again one peer alone sent it. A
// block from both would leave a liar that alternates with an honest
// peer never the single culprit.
func (t *Torrent) releaseOwner(pc *pieceState, now time.Time) {
	old := pc.owner
	pc.owner = nil
	if old == nil || !pc.exclusive || pc.verifying {
		return
	}
	for key := range old.requests {
		if key.piece == pc.index {
			t.cancelRequest(old, key, now)
		}
	}
	if pc.remaining == len(pc.got) {
		return
	}
	for b := range pc.got {
		if pc.got[b] {
			pc.got[b] = false
			pc.from[b] = netip.Addr{}
			pc.remaining++
			if len(pc.askedBy[b]) == 0 {
				pc.unasked++
			}
			t.stats.wasted += t.blockLen(pc.index, b)
		}
	}
}

// expireRequests gives up on requests a peer has sat on for too long:
// all of them once it has delivered nothing for its stall time (see
// pipeline.go), and any single one after requestTimeout, or, once the
// peer has delivered blocks, 10 times the usual wait for one of its
// blocks (at least minRequestTimeout). A peer that serves in a few
// milliseconds and then sits on a full pipeline has stopped serving it
// (anacrolix/torrent v1.59.1 seeders do until the requests are
// cancelled); waiting the full 30 s would stall the download that long.
func (t *Torrent) expireRequests(now time.Time) {
	for _, ps := range t.peers {
		if t.pruneCancelled(ps) || t.checkStall(ps, now) {
			continue
		}
		timeout := requestTimeout
		if ps.blockWait > 0 {
			timeout = min(requestTimeout, max(minRequestTimeout, 10*ps.blockWait))
		}
		expired := false
		for key, at := range ps.requests {
			if now.Sub(at) < timeout {
				continue
			}
			if !expired {
				expired = true
				ps.pipe.stalled(len(ps.requests))
				t.stats.stalls++
			}
			t.stats.timedOut++
			t.cancelRequest(ps, key, now)
		}
	}
}

// pruneCancelled holds ps's cancelled requests to maxCancelled: past it a
// fast peer, which must answer each, is dropped (it reports whether it
// was); another has its oldest forgotten, whose late answers would then
// be errors.
func (t *Torrent) pruneCancelled(ps *peerState) bool {
	n := len(ps.cancelled) - maxCancelled
	if n <= 0 {
		return false
	}
	if ps.fast {
		t.drop(ps.c, errCancelsUnanswered)
		return true
	}
	keys := slices.SortedFunc(maps.Keys(ps.cancelled), func(x, y blockKey) int {
		return ps.cancelled[x].Compare(ps.cancelled[y])
	})
	for _, k := range keys[:n] {
		delete(ps.cancelled, k)
	}
	return false
}

var errCancelsUnanswered = fmt.Errorf("more than %d of our cancels unanswered", maxCancelled)

// onPiece takes a block: it must answer a request of ours (or a cancelled
// one still in flight); it is copied into the piece's buffer, and a
// complete piece goes to be hashed and written.
func (t *Torrent) onPiece(ps *peerState, m wire.Message, now time.Time) error {
	if t.info == nil {
		return errors.New("piece before metadata")
	}
	key := blockKey{int(m.Index), int64(m.Begin)}
	askedAt, asked := ps.requests[key]
	if !asked {
		if _, ok := ps.cancelled[key]; ok {
			delete(ps.cancelled, key)
			t.stats.wasted += int64(len(m.Block))
			return nil
		}
		return fmt.Errorf("piece %d+%d that we did not ask for", m.Index, m.Begin)
	}
	delete(ps.requests, key)
	// blockWait is a moving average (weight 1/8) of how long the peer
	// takes to answer a request.
	if wait := now.Sub(askedAt); ps.blockWait == 0 {
		ps.blockWait = wait
	} else {
		ps.blockWait += (wait - ps.blockWait) / 8
	}
	ps.pipe.received(key, len(m.Block), now.Sub(askedAt), now)
	p, b := key.piece, int(key.begin/wire.BlockSize)
	ps.c.down.Add(int64(len(m.Block)))
	t.stats.downloaded += int64(len(m.Block))
	pc := t.pk.inProgress[p]
	if pc == nil || pc.got[b] || pc.verifying {
		t.stats.wasted += int64(len(m.Block)) // endgame duplicate, or already done
		t.fillRequests(ps, now)
		return nil
	}
	if pc.exclusive && pc.owner != ps {
		// Asked before the piece was taken from ps (see releaseOwner):
		// kept, it would give the piece a second sender.
		pc.unask(b, ps)
		t.stats.wasted += int64(len(m.Block))
		t.fillRequests(ps, now)
		return nil
	}
	if key.begin%wire.BlockSize != 0 || int64(len(m.Block)) != t.blockLen(p, b) {
		return fmt.Errorf("piece %d+%d: %d bytes, want %d", p, key.begin, len(m.Block), t.blockLen(p, b))
	}
	copy(pc.buf[key.begin:], m.Block)
	pc.got[b] = true
	pc.remaining--
	pc.from[b] = ps.c.addr.Addr()
	for _, other := range pc.askedBy[b] {
		if other != ps {
			delete(other.requests, key)
			other.cancelled[key] = now
			other.c.send(&wire.Message{Type: wire.Cancel, Index: m.Index, Begin: m.Begin, Length: uint32(len(m.Block))})
		}
	}
	pc.askedBy[b] = nil
	t.verifyIfDone(pc)
	t.fillRequests(ps, now)
	return nil
}

// verifyIfDone has pc checked and written once every block is in.
func (t *Torrent) verifyIfDone(pc *pieceState) {
	if t.pk.inProgress[pc.index] != pc || pc.verifying || pc.remaining > 0 {
		return
	}
	t.verify(pc)
}

// verify hashes a complete piece off the loop and, if it is right, writes
// it; the result comes back as a pieceDoneEvent. The whole piece is hashed
// here, none of it on the loop as its blocks arrive: the loop then never
// waits on SHA-1 (half the CPU of a download), and the hashing runs
// beside it and beside the connections' readers. Hashed in the loop as
// the blocks came, a 1 GiB loopback fetch from our seeder took 8% more
// CPU and 7% more time. What waits to be hashed is bounded as before, by
// maxWriting and the buffer budget.
func (t *Torrent) verify(pc *pieceState) {
	pc.verifying = true
	t.writing++
	want := t.info.Pieces[pc.index]
	st := t.st
	// Block digests are wanted to find a liar: of a failed piece with
	// several senders, and of a good one that failed before.
	sumsIfBad := len(pc.contributors()) > 1
	sumsIfGood := len(t.suspects[pc.index]) > 0
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ev := pieceDoneEvent{piece: pc.index}
		if sha1.Sum(pc.buf) == want {
			ev.ok = true
			if sumsIfGood {
				ev.sums = blockSums(pc.buf)
			}
			ev.err = st.WriteBlock(pc.index, 0, pc.buf)
		} else if sumsIfBad {
			ev.sums = blockSums(pc.buf)
		}
		t.post(ev)
	}()
}

func (t *Torrent) pieceDone(ev pieceDoneEvent, now time.Time) {
	pc := t.pk.inProgress[ev.piece]
	if pc == nil {
		return
	}
	delete(t.pk.inProgress, ev.piece)
	t.writing--
	t.freeBuf(pc.raw)
	if ev.err != nil {
		t.fail(fmt.Errorf("writing piece %d: %w", ev.piece, ev.err))
		return
	}
	if !ev.ok {
		t.stats.hashFails++
		t.stats.wasted += int64(len(pc.buf))
		if from := pc.contributors(); len(from) == 1 {
			t.ban(from[0], banReason(ev.piece, true))
		} else {
			t.recordSuspects(ev.piece, pc.from, ev.sums)
			t.log.Info("piece failed its hash; fetching it from one peer", zap.Int("piece", ev.piece), zap.Int("contributors", len(from)))
		}
		t.startPiece(ev.piece)
		t.pk.inProgress[ev.piece].exclusive = true
		for _, ps := range t.peers {
			t.fillRequests(ps, now)
		}
		return
	}
	if ev.sums != nil {
		for _, ip := range t.liars(ev.piece, ev.sums) {
			t.ban(ip, banReason(ev.piece, false))
		}
	}
	t.st.MarkComplete(ev.piece)
	t.pk.have.Set(ev.piece)
	t.pk.numHave++
	t.stats.verified++
	t.dirty = true
	for _, ps := range t.peers {
		ps.c.send(&wire.Message{Type: wire.Have, Index: uint32(ev.piece)})
		t.updateInterest(ps)
	}
	t.checkComplete()
	for _, ps := range t.peers {
		t.fillRequests(ps, now)
	}
}
