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

func protocolError(msg string) *krpc.Msg {
	return &krpc.Msg{E: &krpc.Error{Code: krpc.ErrorCodeProtocol, Msg: msg}}
}

// answer builds the response to one query (BEP 5). It runs on the loop.
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
		r.Values = n.store.get(*a.InfoHash, now, n.cfg.MaxValues)
		// Nodes too, even with values: the asker's lookup keeps converging
		// on the closest nodes, which are the ones it will announce to.
		n.setNodes(r, *a.InfoHash, now)
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
		n.store.add(*a.InfoHash, netip.AddrPortFrom(from.Addr(), port), now)
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
