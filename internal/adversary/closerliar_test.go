package adversary

import (
	"math/bits"
	"net/netip"
	"testing"

	"node/krpc"
	"node/routing"
)

func sharedBits(a, b routing.ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return 8*i + bits.LeadingZeros8(x)
		}
	}
	return 8 * len(a)
}

// The closer liar answers find_node and get_peers with K nodes nearer the
// target than 150 bits, at its accomplices' and dead addresses only, and
// get_peers also with the fabricated peers and a token.
func TestCloserLiar(t *testing.T) {
	acc := []netip.AddrPort{netip.MustParseAddrPort("10.9.0.1:6881"), netip.MustParseAddrPort("10.9.0.2:6881")}
	dead := []netip.AddrPort{netip.MustParseAddrPort("10.8.0.1:6881")}
	allowed := map[netip.AddrPort]bool{acc[0]: true, acc[1]: true, dead[0]: true}
	reply := CloserLiar(CloserLiarMix{Accomplices: acc, Dead: dead, FakePeers: 5}, 1)
	target := routing.ID{1, 2, 3}
	for _, q := range []*krpc.Msg{
		{Y: krpc.KindQuery, Q: krpc.MethodFindNode, A: &krpc.Args{ID: routing.ID{9}, Target: &target}},
		{Y: krpc.KindQuery, Q: krpc.MethodGetPeers, A: &krpc.Args{ID: routing.ID{9}, InfoHash: &target}},
	} {
		r := reply(q, netip.MustParseAddrPort("10.0.0.1:6881"))
		if r == nil || r.R == nil || len(r.R.Nodes) != routing.K {
			t.Fatalf("%s: answer %+v", q.Q, r)
		}
		if sharedBits(r.R.ID, target) < 150 {
			t.Fatalf("%s: own ID %v not near %v", q.Q, r.R.ID, target)
		}
		for _, c := range r.R.Nodes {
			if sharedBits(c.ID, target) < 150 || !allowed[c.Addr] {
				t.Fatalf("%s: fabricated node %v", q.Q, c)
			}
		}
		if q.Q == krpc.MethodGetPeers && (len(r.R.Values) != 5 || r.R.Token == "") {
			t.Fatalf("get_peers: values %v, token %q", r.R.Values, r.R.Token)
		}
		// The answer encodes and parses back.
		r.T, r.Y = "aa", krpc.KindResponse
		if _, err := krpc.Parse(r.Append(nil)); err != nil {
			t.Fatalf("%s: %v", q.Q, err)
		}
	}
}
