package adversary

import (
	"math/rand/v2"
	"net/netip"

	"node/krpc"
	"node/routing"
)

// IPVoters are DHT nodes that tell whoever queries them, in the BEP 42
// "ip" key of every answer, that it is at claim: honest ones when claim is
// true, Sybils of one address block when they share a /24 or /64, liars
// about the family when claim is of the other one. Each answers every
// query with its own random ID and no nodes.
func IPVoters(ips []string, claim netip.AddrPort, r *rand.Rand) ([]*Node, error) {
	var out []*Node
	for _, ip := range ips {
		n, err := NewNode(ip)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		id := routing.RandomID(r)
		at := krpc.Addr(claim)
		n.Serve(func(*krpc.Msg, netip.AddrPort) *krpc.Msg {
			return &krpc.Msg{R: &krpc.Return{ID: id}, IP: &at}
		})
		out = append(out, n)
	}
	return out, nil
}
