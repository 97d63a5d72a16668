package adversary

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"

	"node/krpc"
	"node/routing"
)

// The closer liar: a node that answers every find_node and get_peers with
// fabricated nodes nearer the target than any real one (IDs that share
// all but the last few bits with it), at addresses of its accomplices or
// of hosts that never answer, and every get_peers also with fabricated
// peers. A lookup that trusts distance alone converges on the liars and
// stops there, never reaching the real nodes that hold the peers.

// CloserLiarMix is what a closer liar's answers point at.
type CloserLiarMix struct {
	// Accomplices are the other liars (answers send the lookup on to
	// them); Dead are addresses that never answer (answers waste its
	// queries). Each fabricated node is one of either, at random.
	Accomplices, Dead []netip.AddrPort
	// FakePeers is how many fabricated peers a get_peers answer carries:
	// addresses at random in 10.0.0.0/8, port 6881..7880.
	FakePeers int
}

// closerBits is how many low bits of the target a fabricated ID leaves
// random: 150 leading bits shared, nearer than any real node of a network
// of fewer than 2^150 nodes.
const closerBits = 10

// CloserLiar is a reply function for Serve and ServeConn: it answers as
// described above, with a fresh ID near the target each time.
func CloserLiar(mix CloserLiarMix, seed uint64) func(*krpc.Msg, netip.AddrPort) *krpc.Msg {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	near := func(t routing.ID) routing.ID {
		id := t
		id[len(id)-1] = byte(r.Uint32())
		id[len(id)-2] ^= byte(r.Uint32()) & (1<<(closerBits-8) - 1)
		return id
	}
	pick := func() netip.AddrPort {
		pool := mix.Accomplices
		if len(pool) == 0 || len(mix.Dead) > 0 && r.IntN(2) == 0 {
			pool = mix.Dead
		}
		if len(pool) == 0 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}), 6881)
		}
		return pool[r.IntN(len(pool))]
	}
	return func(q *krpc.Msg, _ netip.AddrPort) *krpc.Msg {
		mu.Lock()
		defer mu.Unlock()
		var target *routing.ID
		if q.A != nil {
			target = q.A.Target
			if q.Q == krpc.MethodGetPeers {
				target = q.A.InfoHash
			}
		}
		if target == nil {
			return &krpc.Msg{R: &krpc.Return{ID: routing.RandomID(r)}}
		}
		ret := &krpc.Return{ID: near(*target)}
		for range routing.K {
			ret.Nodes = append(ret.Nodes, routing.Contact{ID: near(*target), Addr: pick()})
		}
		if q.Q == krpc.MethodGetPeers {
			ret.Token = "liar"
			for range mix.FakePeers {
				ret.Values = append(ret.Values, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}), uint16(6881+r.IntN(1000))))
			}
		}
		return &krpc.Msg{R: ret}
	}
}

// ServeConn is Serve on any PacketConn (a simulated one, say): it
// answers every query with what reply returns until pc is closed, and
// returns then.
func ServeConn(pc net.PacketConn, reply func(q *krpc.Msg, from netip.AddrPort) *krpc.Msg) {
	buf := make([]byte, 64<<10)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		ap := ua.AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		m, err := krpc.Parse(buf[:k])
		if err != nil || m.Y != krpc.KindQuery {
			continue
		}
		r := reply(&m, ap)
		if r == nil {
			continue
		}
		r.T = m.T
		if r.Y == "" {
			r.Y = krpc.KindResponse
		}
		_, _ = pc.WriteTo(r.Append(nil), ua)
	}
}
