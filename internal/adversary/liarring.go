package adversary

import (
	"math/rand/v2"
	"net/netip"
	"sync"

	"node/krpc"
	"node/routing"
)

// The liar ring: closer liars that agree. Each answers every find_node
// and get_peers with K of the ring's addresses under fabricated IDs near
// the target, and every get_peers also with fabricated peers, like the
// closer liar; but the ring remembers, per querier, the ID it gave each
// of its addresses, and a member asked by that querier answers under that
// ID, or under its own stable ID if none was given. So no member ever
// answers under another ID than the one it was named with, whoever named
// it: a lookup cannot tell a member's claim of nearness from an honest
// one by its consistency, only by where the claim came from.

// maxRingMemory bounds the IDs the ring remembers; the oldest go first.
const maxRingMemory = 1 << 20

type ringKey struct{ querier, member netip.AddrPort }

// LiarRing is the shared state of a ring of liars.
type LiarRing struct {
	mu        sync.Mutex
	r         *rand.Rand
	own       map[netip.AddrPort]routing.ID
	members   []netip.AddrPort
	named     map[ringKey]routing.ID
	order     []ringKey // oldest first, for maxRingMemory
	fakePeers int
	// compliant, for NewCompliantLiarRing: by target, the members' valid
	// IDs nearest it.
	compliant map[routing.ID][]routing.Contact
}

// NewLiarRing makes a ring of the members, each with its own stable ID;
// get_peers answers carry fakePeers fabricated peers.
func NewLiarRing(members map[netip.AddrPort]routing.ID, fakePeers int, seed uint64) *LiarRing {
	g := &LiarRing{
		r:         rand.New(rand.NewPCG(seed, seed^0x5eed)),
		own:       members,
		named:     make(map[ringKey]routing.ID),
		fakePeers: fakePeers,
	}
	for a := range members {
		g.members = append(g.members, a)
	}
	return g
}

// Reply is the reply function (for Serve and ServeConn) of member self.
func (g *LiarRing) Reply(self netip.AddrPort) func(*krpc.Msg, netip.AddrPort) *krpc.Msg {
	return func(q *krpc.Msg, from netip.AddrPort) *krpc.Msg {
		g.mu.Lock()
		defer g.mu.Unlock()
		id, ok := g.named[ringKey{from, self}]
		if !ok {
			id = g.own[self]
		}
		ret := &krpc.Return{ID: id}
		var target *routing.ID
		if q.A != nil {
			target = q.A.Target
			if q.Q == krpc.MethodGetPeers {
				target = q.A.InfoHash
			}
		}
		if target == nil || len(g.members) < 2 {
			return &krpc.Msg{R: ret}
		}
		if g.compliant != nil {
			for _, c := range g.nearestValid(*target, self) {
				g.remember(ringKey{from, c.Addr}, c.ID)
				ret.Nodes = append(ret.Nodes, c)
			}
		}
		for range routing.K {
			if g.compliant != nil {
				break
			}
			m := g.members[g.r.IntN(len(g.members))]
			if m == self {
				continue
			}
			nid := *target
			nid[len(nid)-1] = byte(g.r.Uint32())
			nid[len(nid)-2] ^= byte(g.r.Uint32()) & (1<<(closerBits-8) - 1)
			g.remember(ringKey{from, m}, nid)
			ret.Nodes = append(ret.Nodes, routing.Contact{ID: nid, Addr: m})
		}
		if q.Q == krpc.MethodGetPeers {
			ret.Token = "ring"
			for range g.fakePeers {
				ret.Values = append(ret.Values, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(g.r.Uint32()), byte(g.r.Uint32()), byte(g.r.Uint32())}), uint16(6881+g.r.IntN(1000))))
			}
		}
		return &krpc.Msg{R: ret}
	}
}

func (g *LiarRing) remember(k ringKey, id routing.ID) {
	if _, ok := g.named[k]; !ok {
		if len(g.order) >= maxRingMemory {
			delete(g.named, g.order[0])
			g.order = g.order[1:]
		}
		g.order = append(g.order, k)
	}
	g.named[k] = id
}
