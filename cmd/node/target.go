package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"node/magnet"
	"node/metadata"
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
	// libtorrent reads them.
	trackers [][]string
}

// numTrackers counts the tracker URLs of tg.
func (tg *target) numTrackers() int {
	n := 0
	for _, t := range tg.trackers {
		n += len(t)
	}
	return n
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
		for _, u := range l.Trackers {
			t.trackers = append(t.trackers, []string{u})
		}
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
		t.trackers = mi.AnnounceList
	case mi.Announce != "":
		t.trackers = [][]string{{mi.Announce}}
	}
	return t, nil
}
