package adversary

import (
	"net/netip"
	"sync/atomic"

	"node/krpc"
	"node/routing"
)

// FloodValuesPerAnswer is how many values one of a PeerFlooder's answers
// holds: as many as fit, with its nodes, in krpc.DefaultMaxPacket (a
// value is 8 bytes encoded), since a larger datagram is dropped unread.
const FloodValuesPerAnswer = 450

// PeerFlooder is a candidate poisoner: DHT sockets on one IP, with IDs
// next to the target, that answer every get_peers with a share of the
// given values, and every query with each other as nodes, so that a
// lookup for the target asks them all.
type PeerFlooder struct {
	Nodes []*Node
	// answered counts the get_peers answered.
	answered atomic.Int64
}

// FloodPeers starts enough sockets on ip to hand out all of values, at
// most FloodValuesPerAnswer in each answer.
func FloodPeers(ip string, target routing.ID, values []netip.AddrPort) (*PeerFlooder, error) {
	f := &PeerFlooder{}
	n := (len(values) + FloodValuesPerAnswer - 1) / FloodValuesPerAnswer
	var contacts krpc.Nodes
	for i := range max(n, 1) {
		nd, err := NewNode(ip)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.Nodes = append(f.Nodes, nd)
		id := target
		id[routing.IDLen-1] ^= byte(i + 1)
		contacts = append(contacts, routing.Contact{ID: id, Addr: nd.Addr})
	}
	for i, nd := range f.Nodes {
		share := values[min(i*FloodValuesPerAnswer, len(values)):min((i+1)*FloodValuesPerAnswer, len(values))]
		id := contacts[i].ID
		nd.Serve(func(q *krpc.Msg, _ netip.AddrPort) *krpc.Msg {
			r := &krpc.Return{ID: id, Nodes: contacts}
			if q.Q == krpc.MethodGetPeers {
				r.Token = "junk"
				r.Values = share
				f.answered.Add(1)
			}
			return &krpc.Msg{R: r}
		})
	}
	return f, nil
}

// Answered is how many get_peers queries the flooder has answered.
func (f *PeerFlooder) Answered() int { return int(f.answered.Load()) }

// Addrs are the flooder's sockets, to bootstrap from.
func (f *PeerFlooder) Addrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, nd := range f.Nodes {
		out = append(out, nd.Addr)
	}
	return out
}

// Close closes every socket.
func (f *PeerFlooder) Close() {
	for _, nd := range f.Nodes {
		nd.Close()
	}
}
