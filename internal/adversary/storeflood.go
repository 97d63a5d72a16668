package adversary

import (
	"fmt"
	"net/netip"
	"time"

	"node/krpc"
	"node/routing"
)

// Store flooders: one source with a valid token of its own that announces
// one info-hash with a fleet of ports, to push the honest peers of a swarm
// out of a node's peer store, or a stream of info-hashes, to flush the
// whole store.

// AnnounceToken asks target for the peers of ih (get_peers) and returns
// the token of its answer, which is good for any info-hash from n's IP.
func (n *Node) AnnounceToken(target netip.AddrPort, id, ih routing.ID, d time.Duration) (string, error) {
	r, err := n.storeRoundTrip(target, "gt", krpc.MethodGetPeers, &krpc.Args{ID: id, InfoHash: &ih}, d)
	if err != nil {
		return "", err
	}
	if r.R == nil || r.R.Token == "" {
		return "", fmt.Errorf("adversary: get_peers answer without a token")
	}
	return r.R.Token, nil
}

// AnnouncePorts announces ih to target once per port, each announce waiting
// for its answer, and returns how many were acknowledged. The announces are
// numbered in their transaction IDs from tid0 on.
func (n *Node) AnnouncePorts(target netip.AddrPort, id, ih routing.ID, token string, ports []int, d time.Duration) (int, error) {
	acked := 0
	for i, p := range ports {
		r, err := n.storeRoundTrip(target, fmt.Sprintf("p%d", i), krpc.MethodAnnouncePeer,
			&krpc.Args{ID: id, InfoHash: &ih, Token: token, Port: &p}, d)
		if err != nil {
			return acked, err
		}
		if r.Y == krpc.KindResponse {
			acked++
		}
	}
	return acked, nil
}

// AnnounceHashes announces each of ihs to target with port, each announce
// waiting for its answer, and returns how many were acknowledged.
func (n *Node) AnnounceHashes(target netip.AddrPort, id routing.ID, ihs []routing.ID, token string, port int, d time.Duration) (int, error) {
	acked := 0
	for i := range ihs {
		r, err := n.storeRoundTrip(target, fmt.Sprintf("h%d", i), krpc.MethodAnnouncePeer,
			&krpc.Args{ID: id, InfoHash: &ihs[i], Token: token, Port: &port}, d)
		if err != nil {
			return acked, err
		}
		if r.Y == krpc.KindResponse {
			acked++
		}
	}
	return acked, nil
}

// storeRoundTrip sends a query and waits up to d for the answer with its
// transaction ID, skipping anything else (such as the target's
// verification pings, which a flooder has no need to answer). Serve must
// not be running.
func (n *Node) storeRoundTrip(to netip.AddrPort, tid, method string, a *krpc.Args, d time.Duration) (krpc.Msg, error) {
	if err := n.Query(to, tid, method, a); err != nil {
		return krpc.Msg{}, err
	}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return krpc.Msg{}, fmt.Errorf("adversary: no answer to %s %q from %v", method, tid, to)
		}
		m, from, err := n.Recv(left)
		if err != nil {
			if m.Y == "" && from.IsValid() {
				continue // a datagram that does not parse
			}
			return krpc.Msg{}, err
		}
		if from == to && m.Y != krpc.KindQuery && m.T == tid {
			return m, nil
		}
	}
}
