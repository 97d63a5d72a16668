package adversary

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"node/krpc"
	"node/routing"
)

// DHT behaviours, on a Node: announcing a hostile peer, answering
// get_peers with junk, flooding.

// AnnouncePeer stores n's IP with port as a peer of ih on the DHT node
// to, as any peer would: get_peers for a token, then announce_peer with
// it, both as id. It reads n's socket, so it must not run beside Serve on
// the same Node; it waits at most d for each answer.
func AnnouncePeer(n *Node, to netip.AddrPort, id routing.ID, ih [20]byte, port int, d time.Duration) error {
	token, err := n.AnnounceToken(to, id, routing.ID(ih), d)
	if err != nil {
		return err
	}
	acked, err := n.AnnouncePorts(to, id, routing.ID(ih), token, []int{port}, d)
	if err == nil && acked == 0 {
		err = fmt.Errorf("adversary: announce_peer to %v not acknowledged", to)
	}
	return err
}

// JunkValues is a reply function for Serve: a node with ID id that
// answers get_peers for ih with a token and values() (junk peers), other
// get_peers with a token alone, and pings and find_node with its ID and
// no nodes.
func JunkValues(id routing.ID, ih [20]byte, values func() krpc.Peers) func(*krpc.Msg, netip.AddrPort) *krpc.Msg {
	return func(q *krpc.Msg, _ netip.AddrPort) *krpc.Msg {
		r := &krpc.Return{ID: id}
		if q.Q == krpc.MethodGetPeers && q.A != nil && q.A.InfoHash != nil {
			r.Token = "junk"
			if *q.A.InfoHash == routing.ID(ih) {
				r.Values = values()
			}
		}
		return &krpc.Msg{R: r}
	}
}

// FloodMix is the share, in percent, of each kind of packet Flood sends;
// the rest are pings.
type FloodMix struct {
	Garbage   int // random bytes, not bencode
	Truncated int // a query cut short
	FindNode  int
	GetPeers  int // for the info-hash given to Flood, or a random one
	Announce  int // announce_peer with a made-up token
}

// DefaultFloodMix is garbage and valid queries in about equal parts.
var DefaultFloodMix = FloodMix{Garbage: 25, Truncated: 15, FindNode: 20, GetPeers: 20, Announce: 5}

// Flood sends packets from n to targets (a random one each time), one
// every every, at most max of them, until ctx ends: a mix of garbage and
// well-formed queries with random transaction and node IDs. It never
// reads its socket. It returns how many packets it sent.
func Flood(ctx context.Context, n *Node, targets []netip.AddrPort, every time.Duration, max int, ih [20]byte, mix FloodMix) int {
	if len(targets) == 0 {
		return 0
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	sent := 0
	for sent < max {
		select {
		case <-ctx.Done():
			return sent
		case <-tick.C:
		}
		if err := n.SendRaw(targets[rand.IntN(len(targets))], FloodPacket(ih, mix)); err == nil {
			sent++
		}
	}
	return sent
}

// FloodPacket is one packet of mix: garbage, a truncated query or a
// well-formed query with random IDs.
func FloodPacket(ih [20]byte, mix FloodMix) []byte {
	var id, other routing.ID
	_, _ = crand.Read(id[:])
	_, _ = crand.Read(other[:])
	tid := string([]byte{byte(rand.IntN(256)), byte(rand.IntN(256))})
	q := &krpc.Msg{T: tid, Y: krpc.KindQuery, Q: krpc.MethodPing, A: &krpc.Args{ID: id}}
	roll := rand.IntN(100)
	switch {
	case roll < mix.Garbage:
		b := make([]byte, 1+rand.IntN(400))
		_, _ = crand.Read(b)
		return b
	case roll < mix.Garbage+mix.Truncated:
		b := q.Append(nil)
		return b[:1+rand.IntN(len(b)-1)]
	case roll < mix.Garbage+mix.Truncated+mix.FindNode:
		q.Q, q.A.Target = krpc.MethodFindNode, &other
	case roll < mix.Garbage+mix.Truncated+mix.FindNode+mix.GetPeers:
		target := routing.ID(ih)
		if rand.IntN(2) == 0 {
			target = other
		}
		q.Q, q.A.InfoHash = krpc.MethodGetPeers, &target
	case roll < mix.Garbage+mix.Truncated+mix.FindNode+mix.GetPeers+mix.Announce:
		target := routing.ID(ih)
		port := 1 + rand.IntN(65535)
		q.Q, q.A.InfoHash, q.A.Token, q.A.Port = krpc.MethodAnnouncePeer, &target, "made-up", &port
	}
	b := q.Append(nil)
	return b
}
