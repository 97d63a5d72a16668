package krpc

import (
	"node/routing"
)

// Message kinds, the "y" key.
const (
	KindQuery    = "q"
	KindResponse = "r"
	KindError    = "e"
)

// Query methods, the "q" key (BEP 5).
const (
	MethodPing         = "ping"
	MethodFindNode     = "find_node"
	MethodGetPeers     = "get_peers"
	MethodAnnouncePeer = "announce_peer"
)

// Msg is one KRPC message. Exactly one of A (query), R (response) or E
// (error) is set, matching Y.
type Msg struct {
	T  string  `bencode:"t"`           // transaction ID, echoed by the responder
	Y  string  `bencode:"y"`           // KindQuery, KindResponse or KindError
	Q  string  `bencode:"q,omitempty"` // method, queries only
	A  *Args   `bencode:"a,omitempty"`
	R  *Return `bencode:"r,omitempty"`
	E  *Error  `bencode:"e,omitempty"`
	V  string  `bencode:"v,omitempty"`  // client version
	IP *Addr   `bencode:"ip,omitempty"` // BEP 42: the requester's address as the responder sees it
	RO int     `bencode:"ro,omitempty"` // BEP 43: 1 if the querier is read-only
}

// Args are a query's arguments. Optional IDs are pointers so that "absent"
// and "present" stay distinct on the wire.
type Args struct {
	ID          routing.ID  `bencode:"id"`
	Target      *routing.ID `bencode:"target,omitempty"`    // find_node
	InfoHash    *routing.ID `bencode:"info_hash,omitempty"` // get_peers, announce_peer
	Token       string      `bencode:"token,omitempty"`     // announce_peer
	Port        *int        `bencode:"port,omitempty"`      // announce_peer
	ImpliedPort int         `bencode:"implied_port,omitempty"`
	Want        []string    `bencode:"want,omitempty"` // BEP 32: "n4", "n6"
}

// Return is a response's body.
type Return struct {
	ID     routing.ID `bencode:"id"`
	Nodes  Nodes      `bencode:"nodes,omitempty"`
	Nodes6 Nodes6     `bencode:"nodes6,omitempty"` // BEP 32
	Token  string     `bencode:"token,omitempty"`
	Values Peers      `bencode:"values,omitempty"`
}

// ReadOnly reports whether the sender flagged itself read-only (BEP 43).
func (m *Msg) ReadOnly() bool { return m.RO == 1 }

// SenderID is the node ID the message carries: a.id for queries, r.id for
// responses, and zero for errors, which carry none.
func (m *Msg) SenderID() routing.ID {
	switch {
	case m.A != nil:
		return m.A.ID
	case m.R != nil:
		return m.R.ID
	}
	return routing.ID{}
}
