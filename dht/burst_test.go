package dht

import (
	"testing"

	"node/krpc"
)

// A lookup keeps burstAlpha*Alpha queries in flight until it has Alpha
// answers and, for get_peers, a peer; then Alpha.
func TestLookupBurstAlpha(t *testing.T) {
	n := &Node{cfg: Config{Alpha: 3}}
	for _, tc := range []struct {
		method           string
		responses, peers int
		want             int
	}{
		{krpc.MethodFindNode, 0, 0, 6},
		{krpc.MethodFindNode, 2, 0, 6},
		{krpc.MethodFindNode, 3, 0, 3},
		{krpc.MethodGetPeers, 0, 0, 6},
		{krpc.MethodGetPeers, 3, 0, 6}, // no peer yet
		{krpc.MethodGetPeers, 20, 0, 6},
		{krpc.MethodGetPeers, 2, 1, 6}, // a peer, but under Alpha answers
		{krpc.MethodGetPeers, 3, 1, 3},
	} {
		l := &lookup{n: n, method: tc.method, stats: LookupStats{Responses: tc.responses, Peers: tc.peers}}
		if got := l.alpha(); got != tc.want {
			t.Errorf("%s with %d answers, %d peers: alpha %d, want %d", tc.method, tc.responses, tc.peers, got, tc.want)
		}
	}
}
