package peer

import (
	"sort"
	"time"

	"node/peer/wire"
)

// The choker's rule (the full tit-for-tat choker comes later): up to
// uploadSlots interested peers are unchoked; when more are waiting, every
// rotateEvery the one unchoked longest makes room for the one waiting
// longest, so every interested peer gets served in turn.
const (
	uploadSlots = 8
	rotateEvery = 10 * time.Second
)

type chokeState struct {
	lastRotate time.Time
}

func (t *Torrent) choke(now time.Time) {
	if t.st == nil || t.st.NumComplete() == 0 {
		return
	}
	var unchoked, waiting []*peerState
	for _, ps := range t.peers {
		switch {
		case !ps.amChoking && !ps.peerInterest:
			t.setChoke(ps, true, now) // frees the slot for someone who wants it
		case !ps.amChoking:
			unchoked = append(unchoked, ps)
		case ps.peerInterest:
			waiting = append(waiting, ps)
		}
	}
	sort.Slice(waiting, func(i, j int) bool { return waiting[i].waitingSince.Before(waiting[j].waitingSince) })
	for len(unchoked) < uploadSlots && len(waiting) > 0 {
		t.setChoke(waiting[0], false, now)
		unchoked = append(unchoked, waiting[0])
		waiting = waiting[1:]
	}
	if len(waiting) > 0 && now.Sub(t.choker.lastRotate) >= rotateEvery {
		t.choker.lastRotate = now
		sort.Slice(unchoked, func(i, j int) bool { return unchoked[i].unchokedAt.Before(unchoked[j].unchokedAt) })
		t.setChoke(unchoked[0], true, now)
		t.setChoke(waiting[0], false, now)
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
}
