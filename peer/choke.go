package peer

import (
	mrand "math/rand/v2"
	"sort"
	"time"

	"node/peer/wire"
)

// The choker is tit-for-tat, as in BitTorrent's reference client:
//
//   - Rates are measured over periods of rechokeEvery: for each peer, the
//     piece payload it sent us (conn.down) and we queued for it (conn.up)
//     since the previous period, divided by the time elapsed.
//   - UploadSlots-1 regular slots go to the interested peers with the best
//     rate: the fastest uploaders to us while we download, the peers we
//     upload to fastest once we seed (every piece, or node seed).
//   - One optimistic slot goes to a choked interested peer picked at
//     random every optimisticEvery (and at once when it leaves or loses
//     interest); peers connected for less than optimisticEvery weigh
//     newPeerOdds times as much, so a newcomer soon has something to trade.
//     When the optimistic peer earns a regular slot, or there is none, the
//     next fastest interested peer takes the free slot.
//
// The decision (chooseUnchoked, pickOptimistic) is a pure function of a
// snapshot; choke applies it on every tick, and at once when a choked
// peer becomes interested while a slot is free (unchokeIfFree). Rates
// only change once a period, so between periods the answer only changes
// when a peer comes, goes or changes interest: a free slot is filled at
// once, not at the next period. There is no anti-snubbing.
const (
	rechokeEvery    = 10 * time.Second
	optimisticEvery = 30 * time.Second
	newPeerOdds     = 3
)

// chokeCandidate is what the choker knows about one peer.
type chokeCandidate struct {
	c          *conn   // identity
	interested bool    // it wants something we have
	unchoked   bool    // we unchoke it now
	down, up   float64 // bytes/s over the last period: from it, to it
	isNew      bool    // connected for less than optimisticEvery
}

// chooseUnchoked returns the peers to unchoke; every other peer is to be
// choked. Its invariants:
//   - only interested peers are returned, each once;
//   - it returns min(slots, number interested) peers (slots < 1 counts
//     as 1);
//   - the slots-1 interested peers with the highest rate (down when
//     downloading, up when seeding) are returned;
//   - optimistic, if it is an interested candidate, is returned; if it is
//     nil, not interested or already among the fastest, its slot goes to
//     the next fastest;
//   - ties in rate go to peers already unchoked (no churn between equals),
//     then to the earlier in peers: the result is deterministic.
func chooseUnchoked(peers []chokeCandidate, seeding bool, slots int, optimistic *conn) []*conn {
	slots = max(slots, 1)
	var cands []chokeCandidate
	optOK := false
	for _, p := range peers {
		if p.interested {
			cands = append(cands, p)
			optOK = optOK || (optimistic != nil && p.c == optimistic)
		}
	}
	rate := func(p chokeCandidate) float64 {
		if seeding {
			return p.up
		}
		return p.down
	}
	sort.SliceStable(cands, func(i, j int) bool {
		ri, rj := rate(cands[i]), rate(cands[j])
		if ri != rj {
			return ri > rj
		}
		return cands[i].unchoked && !cands[j].unchoked
	})
	out := make([]*conn, 0, min(slots, len(cands)))
	regular := min(slots-1, len(cands))
	for _, p := range cands[:regular] {
		out = append(out, p.c)
		if p.c == optimistic {
			optOK = false // it earned its slot; the optimistic one is free
		}
	}
	if optOK {
		out = append(out, optimistic)
	}
	for _, p := range cands[regular:] {
		if len(out) >= slots {
			break
		}
		if optOK && p.c == optimistic {
			continue
		}
		out = append(out, p.c)
	}
	return out
}

// pickOptimistic picks the next optimistic unchoke among the choked
// interested peers, at random, a new peer counting newPeerOdds times; nil
// when there is none.
func pickOptimistic(peers []chokeCandidate, rng *mrand.Rand) *conn {
	total := 0
	weight := func(p chokeCandidate) int {
		switch {
		case !p.interested || p.unchoked:
			return 0
		case p.isNew:
			return newPeerOdds
		}
		return 1
	}
	for _, p := range peers {
		total += weight(p)
	}
	if total == 0 {
		return nil
	}
	n := rng.IntN(total)
	for _, p := range peers {
		if n -= weight(p); n < 0 {
			return p.c
		}
	}
	return nil // unreachable
}

// chokeState is the choker's memory, owned by the loop.
type chokeState struct {
	periodStart  time.Time
	rates        map[*conn]*peerRates
	optimistic   *conn
	optimisticAt time.Time
	// early counts the runs unchokeIfFree made since the last tick.
	early int
}

// peerRates measures one peer's rates over a period.
type peerRates struct {
	seen     time.Time // when the choker first saw it
	mark     time.Time // start of its current measurement
	down, up int64     // its counters at mark
	downRate float64   // bytes/s over its last period
	upRate   float64
}

// choke applies the choker (see above) to the connected peers.
func (t *Torrent) choke(now time.Time) {
	if t.st == nil || t.st.NumComplete() == 0 {
		return // nothing to serve
	}
	ch := &t.choker
	if ch.rates == nil {
		ch.rates = make(map[*conn]*peerRates)
	}
	for c := range ch.rates {
		if t.peers[c] == nil {
			delete(ch.rates, c)
		}
	}
	for c := range t.peers {
		if ch.rates[c] == nil {
			ch.rates[c] = &peerRates{seen: now, mark: now, down: c.down.Load(), up: c.up.Load()}
		}
	}
	if now.Sub(ch.periodStart) >= rechokeEvery {
		ch.periodStart = now
		for c, r := range ch.rates {
			down, up := c.down.Load(), c.up.Load()
			if dt := now.Sub(r.mark).Seconds(); dt > 0 {
				r.downRate, r.upRate = float64(down-r.down)/dt, float64(up-r.up)/dt
			}
			r.mark, r.down, r.up = now, down, up
		}
	}

	// Longest waiting first: the final tie-break among equals.
	list := make([]*peerState, 0, len(t.peers))
	for _, ps := range t.peers {
		list = append(list, ps)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].waitingSince.Before(list[j].waitingSince) })
	cands := make([]chokeCandidate, len(list))
	for i, ps := range list {
		r := ch.rates[ps.c]
		cands[i] = chokeCandidate{
			c: ps.c, interested: ps.peerInterest, unchoked: !ps.amChoking,
			down: r.downRate, up: r.upRate, isNew: now.Sub(r.seen) < optimisticEvery,
		}
	}

	cur := t.peers[ch.optimistic]
	valid := cur != nil && cur.peerInterest
	if !valid || now.Sub(ch.optimisticAt) >= optimisticEvery {
		if p := pickOptimistic(cands, t.rng); p != nil {
			ch.optimistic, ch.optimisticAt = p, now
		} else if !valid {
			ch.optimistic = nil
		} // else: nobody else is waiting; the current one stays
	}

	seeding := t.complete() || t.cfg.NoDownload
	unchoke := make(map[*conn]bool, t.cfg.UploadSlots)
	for _, c := range chooseUnchoked(cands, seeding, t.cfg.UploadSlots, ch.optimistic) {
		unchoke[c] = true
	}
	for _, ps := range list { // choke first: never more than the slots unchoked
		if !unchoke[ps.c] {
			t.setChoke(ps, true, now)
		}
	}
	for _, ps := range list {
		if unchoke[ps.c] {
			t.setChoke(ps, false, now)
		} else {
			// Only a peer the choker leaves choked gets its allowed fast
			// set: sent just before an unchoke it would be of no use.
			t.sendAllowedFast(ps)
		}
	}
}

// unchokeIfFree runs the choker at once when ps, choked, has just become
// interested and an upload slot is free, as libtorrent does: waiting for
// the next tick cost every leecher of ours up to tickEvery before its
// first request, a quarter of a second, a seventh of a 1 GiB loopback
// fetch. A run costs O(peers log peers) on the loop, and peers taking
// turns at losing and regaining interest can each time find a slot free
// (a peer no longer interested keeps its slot until a run chokes it), so
// between two ticks there are at most UploadSlots such runs.
func (t *Torrent) unchokeIfFree(ps *peerState, now time.Time) {
	slots := max(t.cfg.UploadSlots, 1)
	if t.info == nil || !ps.amChoking || t.choker.early >= slots || t.st == nil || t.st.NumComplete() == 0 {
		return
	}
	unchoked := 0
	for _, o := range t.peers {
		if !o.amChoking {
			unchoked++
		}
	}
	if unchoked < slots {
		t.choker.early++
		t.choke(now)
	}
}

func (t *Torrent) setChoke(ps *peerState, choke bool, now time.Time) {
	if ps.amChoking == choke {
		return
	}
	ps.amChoking = choke
	typ := wire.Choke
	if choke {
		ps.waitingSince = now
	} else {
		typ = wire.Unchoke
		ps.unchokedAt = now
	}
	ps.c.send(&wire.Message{Type: typ})
	if choke {
		t.sendAllowedFast(ps)
	}
}
