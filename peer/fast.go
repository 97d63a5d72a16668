package peer

import (
	"fmt"
	"slices"
	"time"

	"node/peer/wire"
)

// The Fast extension (BEP 6) is in force on a connection when both
// handshakes set its bit (peerState.fast). It changes four things:
//
//   - Have all / have none stand in for the bitfield when they fit, and
//     count as the one bitfield BEP 3 allows.
//   - Every request gets exactly one answer, the block or a reject. We
//     serve a request at once or reject it at once (choked and not
//     allowed fast, or a piece we lack), so a choke of ours leaves nothing
//     pending to reject: what was queued before it is sent. Their choke no
//     longer cancels our requests: they stay until served, rejected, or
//     expired by expireRequests; a rejected block is freed and asked of
//     the other peers at once.
//   - Allowed fast: an interested peer we choke is sent the pieces of its
//     BEP 6 set that we have (allowedFastSetSize), and may fetch each of
//     them once while choked. The pieces a peer allows us are kept (at most
//     maxAllowedFastIn) and asked for while it chokes us.
//   - Suggest piece: the latest maxSuggested suggestions of a peer are
//     tried before the picker when choosing a piece to start for that
//     peer, if it has them and we need them. They change nothing else:
//     not availability, interest or any other peer's picks.
//
// Without the bit on either side none of this happens, and a BEP 6
// message from such a peer is a protocol error.
const (
	// allowedFastSetSize is the allowed fast set we send: BEP 6's
	// suggestion, and libtorrent's default until 2.0 (5 since).
	allowedFastSetSize = 10
	// maxAllowedFastIn bounds the allowed fast pieces kept per peer;
	// further ones are ignored. An honest peer sends about 10.
	maxAllowedFastIn = 32
	// maxSuggested bounds the suggestions kept per peer, newest first;
	// libtorrent keeps 16 too (max_suggest_pieces).
	maxSuggested = 16
)

// FastCounts counts BEP 6 messages by type.
type FastCounts struct {
	Suggest, HaveAll, HaveNone, Reject, AllowedFast int
}

func (fc *FastCounts) add(typ wire.MessageType) {
	switch typ {
	case wire.SuggestPiece:
		fc.Suggest++
	case wire.HaveAll:
		fc.HaveAll++
	case wire.HaveNone:
		fc.HaveNone++
	case wire.RejectRequest:
		fc.Reject++
	case wire.AllowedFast:
		fc.AllowedFast++
	}
}

// sendFast sends a BEP 6 message, counted.
func (t *Torrent) sendFast(ps *peerState, m *wire.Message) {
	t.stats.fastSent.add(m.Type)
	ps.c.send(m)
}

// sendHaves sends what we have as the first message: have all or have
// none to a fast peer when they fit, else a bitfield if we have anything.
func (t *Torrent) sendHaves(ps *peerState) {
	n := 0
	if t.info != nil && t.st != nil {
		n = t.st.NumComplete()
	}
	switch {
	case ps.fast && n == 0:
		t.sendFast(ps, &wire.Message{Type: wire.HaveNone})
	case ps.fast && n == t.info.NumPieces():
		t.sendFast(ps, &wire.Message{Type: wire.HaveAll})
	case n > 0:
		ps.c.send(&wire.Message{Type: wire.Bitfield, Bitfield: t.st.Have()})
	}
}

// onFast applies a BEP 6 message.
func (t *Torrent) onFast(ps *peerState, m wire.Message, now time.Time) error {
	if !ps.fast {
		return fmt.Errorf("%v without the Fast extension", m.Type)
	}
	t.stats.fastReceived.add(m.Type)
	switch m.Type {
	case wire.HaveAll, wire.HaveNone:
		if ps.sawBitfield {
			return fmt.Errorf("%v after a bitfield, have all or have none", m.Type)
		}
		ps.sawBitfield = true
		if m.Type == wire.HaveNone {
			return nil
		}
		if t.info == nil {
			ps.haveAll = true
			return nil
		}
		return t.applyHaveAll(ps, now)
	case wire.RejectRequest:
		return t.onReject(ps, m, now)
	case wire.AllowedFast:
		p := int(m.Index)
		if !t.advisoryPiece(p) || slices.Contains(ps.allowedIn, p) || len(ps.allowedIn) >= maxAllowedFastIn {
			return nil
		}
		ps.allowedIn = append(ps.allowedIn, p)
		if ps.peerChoking && t.info != nil {
			t.fillRequests(ps, now)
		}
	case wire.SuggestPiece:
		p := int(m.Index)
		if !t.advisoryPiece(p) || slices.Contains(ps.suggested, p) {
			return nil
		}
		if len(ps.suggested) >= maxSuggested {
			ps.suggested = ps.suggested[:maxSuggested-1]
		}
		ps.suggested = slices.Insert(ps.suggested, 0, p)
	}
	return nil
}

// advisoryPiece reports whether a suggested or allowed fast piece is worth
// keeping: one of the torrent's that we lack, or any before we know the
// piece count (adoptEarly filters those). Pieces out of range are ignored
// rather than an error, as libtorrent does: the messages are advice.
func (t *Torrent) advisoryPiece(p int) bool {
	if t.info == nil {
		return true
	}
	return p < t.info.NumPieces() && !t.pk.have.Has(p)
}

// adoptEarlyFast applies what a fast peer told us before we knew the
// piece count.
func (t *Torrent) adoptEarlyFast(ps *peerState, now time.Time) error {
	keep := func(p int) bool { return !t.advisoryPiece(p) }
	ps.allowedIn = slices.DeleteFunc(ps.allowedIn, keep)
	ps.suggested = slices.DeleteFunc(ps.suggested, keep)
	if ps.haveAll {
		ps.haveAll = false
		return t.applyHaveAll(ps, now)
	}
	return nil
}

// applyHaveAll is applyBitfield for a have all: errBothSeeds when we are
// a seed too.
func (t *Torrent) applyHaveAll(ps *peerState, now time.Time) error {
	n := t.info.NumPieces()
	all := wire.NewBits(n)
	for i := range n {
		all.Set(i)
	}
	return t.setHave(ps, all, now)
}

// onReject frees a rejected request and asks the other peers that have
// the piece at once. A reject of a request we cancelled is its answer; a
// reject of one we never made is a protocol error (BEP 6).
func (t *Torrent) onReject(ps *peerState, m wire.Message, now time.Time) error {
	key := blockKey{int(m.Index), int64(m.Begin)}
	if _, ok := ps.requests[key]; !ok {
		if _, ok := ps.cancelled[key]; ok {
			delete(ps.cancelled, key)
			return nil
		}
		return fmt.Errorf("reject of %d+%d, which we did not request", m.Index, m.Begin)
	}
	delete(ps.requests, key)
	t.stats.rejected++
	if pc := t.pk.inProgress[key.piece]; pc != nil {
		pc.unask(int(key.begin/wire.BlockSize), ps)
		if pc.owner == ps {
			t.releaseOwner(pc, now)
		}
	}
	// As libtorrent does: a piece it rejects while choking us is no
	// longer allowed fast, and a suggestion it rejects is withdrawn, so
	// that neither is asked for again and again.
	if ps.peerChoking {
		ps.allowedIn = slices.DeleteFunc(ps.allowedIn, func(p int) bool { return p == key.piece })
	} else {
		ps.suggested = slices.DeleteFunc(ps.suggested, func(p int) bool { return p == key.piece })
	}
	// The rejecting peer is not refilled here: it gets its turn with
	// everyone else at the next tick, so one that rejects everything is
	// not asked again at network speed.
	for _, other := range t.peers {
		if other != ps && other.have.Has(key.piece) {
			t.fillRequests(other, now)
		}
	}
	return nil
}

// reject answers a request we will not serve, to a fast peer.
func (t *Torrent) reject(ps *peerState, m wire.Message) {
	if ps.fast {
		t.sendFast(ps, &wire.Message{Type: wire.RejectRequest, Index: m.Index, Begin: m.Begin, Length: m.Length})
	}
}

// servesChoked reports whether we serve a block of piece p to ps while
// choking it: p is in the allowed fast set we sent it, and it has not yet
// had the whole piece that way.
func (t *Torrent) servesChoked(ps *peerState, p int) bool {
	served, ok := ps.allowedOut[p]
	if !ok || served >= t.blockCount(p) {
		return false
	}
	ps.allowedOut[p] = served + 1
	return true
}

// sendAllowedFast sends an interested peer we choke, once per connection,
// the pieces of its allowed fast set that we have and it lacks.
func (t *Torrent) sendAllowedFast(ps *peerState) {
	if !ps.fast || ps.allowedOut != nil || !ps.amChoking || !ps.peerInterest || t.st == nil || t.st.NumComplete() == 0 {
		return
	}
	ps.allowedOut = make(map[int]int, allowedFastSetSize)
	for _, p := range wire.AllowedFastSet(ps.c.addr.Addr(), t.ih, t.info.NumPieces(), allowedFastSetSize) {
		if t.st.Complete(int(p)) && !ps.have.Has(int(p)) {
			ps.allowedOut[int(p)] = 0
			t.sendFast(ps, &wire.Message{Type: wire.AllowedFast, Index: p})
		}
	}
}

// mayAsk reports whether ps may be asked for a block of piece p now: it
// has the piece, and does not choke us or allows the piece fast.
func (ps *peerState) mayAsk(p int) bool {
	return ps.have.Has(p) && (!ps.peerChoking || slices.Contains(ps.allowedIn, p))
}

// pickFor chooses a piece to start for ps: while it chokes us one it
// allows fast, else the newest of its suggestions we can use, else the
// picker's choice.
func (t *Torrent) pickFor(ps *peerState) (int, bool) {
	list := ps.suggested
	if ps.peerChoking {
		list = ps.allowedIn
	}
	for _, p := range list {
		if ps.have.Has(p) && !t.pk.have.Has(p) && t.pk.inProgress[p] == nil {
			return p, true
		}
	}
	if ps.peerChoking {
		return 0, false
	}
	return t.pk.pick(ps.have, t.rng)
}
