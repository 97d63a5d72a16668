package dht

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"node/krpc"
	"node/routing"
)

// AnnounceStats describes one Announce.
type AnnounceStats struct {
	Lookup    LookupStats
	Announced int // nodes that accepted our announce_peer
}

// Announce tells the DHT that we serve infoHash on TCP port: a get_peers
// lookup (streaming peers found to peers, which may be nil), then
// announce_peer, with the token each gave, to the K closest nodes that
// answered (and, once the lookup prefers BEP 42 IDs, the few nearer
// nodes without them that it asked: see announceTo). Port 0 announces
// with implied_port (BEP 5), so the nodes store the source port of our
// UDP packets.
func (n *Node) announcePeers(ctx context.Context, infoHash routing.ID, port int, peers chan<- netip.AddrPort) (AnnounceStats, error) {
	l, err := n.newLookup(ctx, infoHash, krpc.MethodGetPeers, peers)
	if err != nil {
		return AnnounceStats{}, err
	}
	return n.announce(ctx, l, infoHash, port)
}

// AnnounceFrom is Announce, with the node that gave each peer found (see
// GetPeersFrom).
func (n *Node) announceFrom(ctx context.Context, infoHash routing.ID, port int, peers chan<- FoundPeer) (AnnounceStats, error) {
	l, err := n.newLookup(ctx, infoHash, krpc.MethodGetPeers, nil)
	if err != nil {
		return AnnounceStats{}, err
	}
	l.from = peers
	return n.announce(ctx, l, infoHash, port)
}

func (n *Node) announce(ctx context.Context, l *lookup, infoHash routing.ID, port int) (AnnounceStats, error) {
	st := AnnounceStats{}
	err := l.run(ctx)
	st.Lookup = l.stats
	if err != nil {
		return st, err
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, c := range l.announceTo() {
		if c.token == "" {
			continue
		}
		args := &krpc.Args{ID: n.ID(), InfoHash: &infoHash, Token: c.token}
		if port == 0 {
			args.ImpliedPort = 1
		} else {
			p := port
			args.Port = &p
		}
		wg.Add(1)
		go func(addr netip.AddrPort) {
			defer wg.Done()
			if _, err := n.tr.Query(ctx, addr, krpc.MethodAnnouncePeer, args); err == nil {
				mu.Lock()
				st.Announced++
				mu.Unlock()
			}
		}(c.Addr)
	}
	wg.Wait()
	if st.Announced == 0 {
		return st, errors.New("dht: no node accepted the announce")
	}
	return st, ctx.Err()
}
