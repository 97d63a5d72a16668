package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"node/magnet"
	"node/metadata"
	"node/peer/tracker"
)

// target is what the user asked to fetch or seed.
type target struct {
	ih    metadata.InfoHash
	info  *metadata.Info // nil for a magnet link
	name  string
	peers []netip.AddrPort // x.pe
	nodes []string         // a .torrent's "nodes" key (BEP 5)
	// trackers are BEP 12 tiers: a .torrent's announce-list (or its
	// announce alone), a magnet's tr each in a tier of its own, as
	// libtorrent reads them; without repeats, and no more than
	// tracker.MaxTrackers URLs, none that tracker.CheckURL refuses.
	// moreTrackers counts those left out beyond the bound, unusable the
	// refused ones.
	trackers         [][]string
	moreTrackers     int
	unusableTrackers int
}

// numTrackers counts the tracker URLs of tg.
func (tg *target) numTrackers() int {
	n := 0
	for _, t := range tg.trackers {
		n += len(t)
	}
	return n
}

// setTrackers keeps the first tracker.MaxTrackers distinct URLs of tiers,
// the Announcer's bound, skipping first what it skips (URLs it cannot
// ask: wss, other schemes), so that what node says it asks is what it asks.
func (tg *target) setTrackers(tiers [][]string) {
	seen := make(map[string]bool)
	kept := 0
	for _, tier := range tiers {
		var t []string
		for _, u := range tier {
			switch {
			case seen[u]:
			case tracker.CheckURL(u) != nil:
				tg.unusableTrackers++
			case kept == tracker.MaxTrackers:
				tg.moreTrackers++
			default:
				t = append(t, u)
				kept++
			}
			seen[u] = true
		}
		if len(t) > 0 {
			tg.trackers = append(tg.trackers, t)
		}
	}
}

// loadTarget reads a magnet link or a .torrent file. Its errors are the
// user's input being wrong: exit code exitBadInput.
func loadTarget(arg string) (*target, error) {
	if strings.HasPrefix(strings.ToLower(arg), "magnet:") {
		l, err := magnet.Parse(arg)
		if err != nil {
			return nil, err
		}
		if !l.HasV1 {
			return nil, errors.New("magnet link has no v1 info-hash (urn:btih); v2-only torrents are not supported yet")
		}
		t := &target{ih: metadata.InfoHash(l.InfoHash), name: l.Name}
		var tiers [][]string
		for _, u := range l.Trackers {
			tiers = append(tiers, []string{u})
		}
		t.setTrackers(tiers)
		for _, p := range l.Peers {
			if ap, err := netip.ParseAddrPort(p); err == nil {
				t.peers = append(t.peers, ap)
			}
		}
		return t, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, err
	}
	mi, err := metadata.ParseMetaInfo(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	t := &target{ih: mi.Info.InfoHash, info: mi.Info, name: mi.Info.Name, nodes: mi.Nodes}
	// BEP 12: a client that reads announce-list ignores announce.
	switch {
	case len(mi.AnnounceList) > 0:
		t.setTrackers(mi.AnnounceList)
	case mi.Announce != "":
		t.setTrackers([][]string{{mi.Announce}})
	}
	return t, nil
}
