package peer

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"node/peer/wire"
)

// Peer exchange (BEP 11). What a peer tells us is one more source of
// candidates, of lower trust than the DHT's (see dialable); what we tell
// a peer is the peers we are connected to, as deltas.
const (
	// extPexID is the id peers send ut_pex on to us.
	extPexID = 2
	// pexInterval is how often we send a peer a ut_pex message, at most:
	// BEP 11's once a minute. A peer's messages closer together than
	// three quarters of it (the tolerance the clients agreed on for one
	// sent "just under a minute" after the last) are ignored.
	pexInterval = time.Minute
	// pexMaxAdded and pexMaxDropped bound the contacts of each kind in a
	// message we send, IPv4 and IPv6 together, as BEP 11 asks; of a
	// message we receive, the added contacts beyond pexMaxAdded are
	// ignored. A connection's first message may carry pexMaxFirstAdded:
	// BEP 11 exempts it from the 50, and libtorrent puts up to 100 in it.
	pexMaxAdded      = 50
	pexMaxDropped    = 50
	pexMaxFirstAdded = 100
	// pexMaxEarly is how many messages a peer may send too soon after the
	// last one it got in (each ignored) before it counts as a flood and
	// is dropped. libtorrent drops at the sixth message in a minute; a
	// little more room costs us one map lookup per message.
	pexMaxEarly = 10
	// pexPerIP bounds the contacts of one message at one IPv4 address or
	// IPv6 /64: as many as we would connect to there. More is one address
	// listed on many ports, which a peer does not see in a swarm, and
	// would have us dial a victim's host over and over.
	pexPerIP = maxConnsPerIP
)

// pexOff is true for a private torrent: BEP 27 restricts its peers to
// those the tracker gives. Before the metadata we cannot know, and
// advertise ut_pex anyway.
func (t *Torrent) pexOff() bool {
	return t.private()
}

// private reports whether the torrent is known to be private (BEP 27):
// its peers are the tracker's and the user's only, found neither by PEX
// nor by the DHT.
func (t *Torrent) private() bool {
	return t.info != nil && t.info.Private
}

// pexAddr is where ps listens, as we tell others, and whether we know it:
// the address we dialled, or its IP with the port of its BEP 10 "p".
func (t *Torrent) pexAddr(ps *peerState) (netip.AddrPort, wire.PexFlags, bool) {
	var f wire.PexFlags
	if t.info != nil && ps.have != nil && ps.numHave == t.info.NumPieces() {
		f |= wire.PexSeed
	}
	if ps.c.outgoing {
		// BEP 11's 0x10: we reached it where it listens. A "p" is only
		// what it says.
		return ps.c.addr, f | wire.PexReachable, true
	}
	if ps.listenPort != 0 {
		return netip.AddrPortFrom(ps.c.addr.Addr(), ps.listenPort), f, true
	}
	return netip.AddrPort{}, 0, false
}

// sendPex sends every peer that takes ut_pex and is due one (see
// pexInterval) the peers connected since its last message, and those gone.
// A peer never hears of itself, of us, or of an address more local than
// its own (a public peer learns nothing of our LAN).
func (t *Torrent) sendPex(now time.Time) {
	if t.pexOff() {
		return
	}
	type entry struct {
		ps    *peerState
		flags wire.PexFlags
	}
	var current map[netip.AddrPort]entry
	for _, r := range t.peers {
		if r.extPex == 0 || now.Before(r.pexNext) {
			continue
		}
		if current == nil {
			current = make(map[netip.AddrPort]entry, len(t.peers))
			for _, ps := range t.peers {
				if a, f, ok := t.pexAddr(ps); ok {
					current[a] = entry{ps, f}
				}
			}
		}
		rClass := t.classify(r.c.addr.Addr())
		rAddr, _, _ := t.pexAddr(r)
		tellable := func(a netip.AddrPort, e entry) bool {
			return e.ps != r && a != r.c.addr && a != rAddr && allowedFromClass(t.classify, a, rClass)
		}
		var p wire.Pex
		for a, e := range current {
			if len(p.Added) == pexMaxAdded {
				break
			}
			if !r.pexTold[a] && tellable(a, e) {
				p.Added = append(p.Added, wire.PexPeer{Addr: a, Flags: e.flags})
			}
		}
		for a := range r.pexTold {
			if len(p.Dropped) == pexMaxDropped {
				break
			}
			if e, ok := current[a]; !ok || !tellable(a, e) {
				p.Dropped = append(p.Dropped, a)
			}
		}
		if len(p.Added) == 0 && len(p.Dropped) == 0 {
			// Nothing to say, as uTorrent and libtorrent do; the first
			// list goes out as soon as there is something in it.
			continue
		}
		payload, err := p.Append(nil)
		if err != nil {
			continue
		}
		r.c.send(&wire.Message{Type: wire.Extended, ExtendedID: uint8(r.extPex), Payload: payload})
		t.stats.pexSent++
		r.pexNext = now.Add(t.pexEvery)
		if r.pexTold == nil {
			r.pexTold = make(map[netip.AddrPort]bool, len(p.Added))
		}
		for _, a := range p.Added {
			r.pexTold[a.Addr] = true
		}
		for _, a := range p.Dropped {
			delete(r.pexTold, a)
		}
	}
}

// dropUnlisted forgets the candidates peers (PEX, BEP 7 hints) and DHT
// nodes named, once the metadata shows the torrent private: BEP 27 allows
// only the tracker's peers (and the user's), and before it we could not
// know.
func (t *Torrent) dropUnlisted() {
	for a, cd := range t.known {
		if cd.kind != fromUser && cd.kind != fromTracker {
			t.dropCandidate(a)
		}
	}
}

var errPexFlood = errors.New("ut_pex flood")

// onPex takes the contacts of a peer's ut_pex message as candidates, within
// the bounds above and those of every source (see addCandidate). The
// dropped contacts are not acted on: a peer's word that a peer left is no
// reason to forget one another source named.
func (t *Torrent) onPex(ps *peerState, payload []byte, now time.Time) error {
	p, err := wire.ParsePex(payload)
	if err != nil {
		t.stats.pexBad++
		return fmt.Errorf("ut_pex: %w", err)
	}
	if t.pexOff() {
		return nil
	}
	if !ps.pexAt.IsZero() && now.Sub(ps.pexAt) < t.pexEvery*3/4 {
		t.stats.pexEarly++
		if ps.pexEarly++; ps.pexEarly > pexMaxEarly {
			return fmt.Errorf("%w: %d messages within %v", errPexFlood, ps.pexEarly+1, t.pexEvery)
		}
		return nil
	}
	limit := pexMaxAdded
	if ps.pexAt.IsZero() {
		limit = pexMaxFirstAdded
	}
	ps.pexAt, ps.pexEarly = now, 0
	t.stats.pexReceived++
	if len(p.Added) > limit {
		t.stats.pexIgnored += len(p.Added) - limit
		p.Added = p.Added[:limit]
	}
	perIP := make(map[netip.Prefix]int)
	added := 0
	for _, pp := range p.Added {
		a := netip.AddrPortFrom(pp.Addr.Addr().Unmap(), pp.Addr.Port())
		k := ipKey(a.Addr())
		self := a == ps.c.addr || (a.Addr() == ps.c.addr.Addr() && a.Port() == ps.listenPort)
		if self || perIP[k] >= pexPerIP {
			t.stats.pexIgnored++
			continue
		}
		perIP[k]++
		if t.addCandidateFrom(a, ps.c.addr, fromPex, pp.Flags&wire.PexSeed != 0, now) != nil {
			added++
		} else if _, known := t.known[a]; !known {
			t.stats.pexIgnored++
		}
	}
	t.stats.pexAdded += added
	if added > 0 {
		t.fillDials(now)
	}
	return nil
}
