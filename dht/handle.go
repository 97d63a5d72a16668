package dht

import (
	"net/netip"
	"time"

	"node/krpc"
	"node/routing"
)

// handleQuery is the Transport's Handler. It runs on the socket's reader
// goroutine and hands the query to the loop, which owns what the answer
// needs (table, tokens).
func (n *Node) handleQuery(from netip.AddrPort, q *krpc.Msg) *krpc.Msg {
	reply := make(chan *krpc.Msg, 1)
	select {
	case n.events <- queryEvent{from: from, q: q, reply: reply}:
	case <-n.ctx.Done():
		return nil
	}
	select {
	case r := <-reply:
		return r
	case <-n.ctx.Done():
		return nil
	}
}

// BEP 51 sample_infohashes answers.
const (
	// SampleInterval is the "interval" we advertise, and how long one
	// random sample is served. BEP 51 allows up to six hours; a minute
	// keeps a crawler's view of a small store fresh while still capping
	// how fast it can page through a big one.
	SampleInterval = time.Minute
	// maxSamples keeps the answer within one packet even beside K IPv6
	// nodes: 20 hashes (400 bytes) plus 8 nodes6 (304) and the rest is
	// well under the 1280-byte IPv6 minimum MTU.
	maxSamples = 20
)

func protocolError(msg string) *krpc.Msg {
	return &krpc.Msg{E: &krpc.Error{Code: krpc.ErrorCodeProtocol, Msg: msg}}
}

// answer builds the response to one query (BEP 5, with BEP 33 scrapes and
// BEP 51 samples). It runs on the loop.
func (n *Node) answer(from netip.AddrPort, q *krpc.Msg, now time.Time) *krpc.Msg {
	a := q.A
	// A read-only node (BEP 43) cannot answer queries, so it must not be
	// handed to others; anyone else is pinged before it is trusted.
	if !q.ReadOnly() && n.usable(from) && a.ID != n.self {
		if n.table.Queried(routing.Contact{ID: a.ID, Addr: from}, now) {
			n.ping(from)
		}
	}
	ip := krpc.Addr(from)
	r := &krpc.Return{ID: n.self}
	switch q.Q {
	case krpc.MethodPing:
	case krpc.MethodFindNode:
		if a.Target == nil {
			return protocolError("find_node: missing target")
		}
		n.setNodes(r, *a.Target, now)
	case krpc.MethodGetPeers:
		if a.InfoHash == nil {
			return protocolError("get_peers: missing info_hash")
		}
		r.Token = n.tok.issue(from.Addr())
		r.Values = n.store.peers(*a.InfoHash, now, n.cfg.MaxValues, a.NoSeed == 1)
		if a.Scrape == 1 { // BEP 33
			r.BFsd, r.BFpe = n.store.scrape(*a.InfoHash, now)
		}
		// Nodes too, even with values: the asker's lookup keeps converging
		// on the closest nodes, which are the ones it will announce to.
		// Under an amplification bound the answer must stay small, so
		// values come alone (BEP 5's values-or-nodes), as many as fit.
		switch {
		case n.cfg.MaxAmplification > 0 && (r.BFsd != nil || r.BFpe != nil):
			r.Values = nil // the filters alone fill the allowance
		case n.cfg.MaxAmplification > 0 && len(r.Values) > 0:
			r.Values = r.Values[:min(len(r.Values), maxBoundedValues)]
		default:
			n.setNodes(r, *a.InfoHash, now)
		}
	case krpc.MethodAnnouncePeer:
		if a.InfoHash == nil {
			return protocolError("announce_peer: missing info_hash")
		}
		if !n.tok.valid(a.Token, from.Addr()) {
			return protocolError("announce_peer: bad token")
		}
		port := from.Port()
		if a.ImpliedPort == 0 { // BEP 5: "present and non-zero" means implied
			if a.Port == nil || *a.Port <= 0 || *a.Port > 65535 {
				return protocolError("announce_peer: bad port")
			}
			port = uint16(*a.Port)
		}
		n.store.addPeer(*a.InfoHash, netip.AddrPortFrom(from.Addr(), port), a.Seed == 1, now)
	case krpc.MethodSampleInfohashes:
		// BEP 51. The target only picks the nodes, which let a crawler walk
		// the keyspace; the sample is the same whatever it is.
		if a.Target == nil {
			return protocolError("sample_infohashes: missing target")
		}
		num, sample := n.store.samples(n.rng, now, SampleInterval, maxSamples)
		r.Interval = int(SampleInterval / time.Second)
		r.Num = num
		r.Samples = sample // non-nil even when empty: BEP 51 requires the key
		n.setNodes(r, *a.Target, now)
	default:
		return &krpc.Msg{E: &krpc.Error{Code: krpc.ErrorCodeMethodUnknown, Msg: "method unknown"}}
	}
	return &krpc.Msg{R: r, IP: &ip}
}

// setNodes fills in the K closest nodes we know to target, each family in
// its own key (BEP 32).
func (n *Node) setNodes(r *krpc.Return, target routing.ID, now time.Time) {
	for _, c := range n.table.Closest(target, routing.K, now) {
		if c.Addr.Addr().Unmap().Is4() {
			r.Nodes = append(r.Nodes, c)
		} else {
			r.Nodes6 = append(r.Nodes6, c)
		}
	}
}
