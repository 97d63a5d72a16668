package krpc

import (
	"fmt"

	"github.com/anacrolix/torrent/bencode"

	"node/krpc/nodeid"
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
	// MethodSampleInfohashes asks for a sample of the info-hashes a node
	// stores (BEP 51).
	MethodSampleInfohashes = "sample_infohashes"
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
	ID          nodeid.ID  `bencode:"id"`
	Target      *nodeid.ID `bencode:"target,omitempty"`    // find_node, sample_infohashes
	InfoHash    *nodeid.ID `bencode:"info_hash,omitempty"` // get_peers, announce_peer
	Token       string     `bencode:"token,omitempty"`     // announce_peer
	Port        *int       `bencode:"port,omitempty"`      // announce_peer
	ImpliedPort int        `bencode:"implied_port,omitempty"`
	Want        []string   `bencode:"want,omitempty"` // BEP 32: "n4", "n6"
	// BEP 33. Flags count only when exactly 1, as ro does (BEP 43).
	Scrape int `bencode:"scrape,omitempty"` // get_peers: also answer BFsd and BFpe
	NoSeed int `bencode:"noseed,omitempty"` // get_peers: leave seeds out of values
	Seed   int `bencode:"seed,omitempty"`   // announce_peer: the peer is a seed
}

// Return is a response's body.
type Return struct {
	ID     nodeid.ID `bencode:"id"`
	Nodes  Nodes     `bencode:"nodes,omitempty"`
	Nodes6 Nodes6    `bencode:"nodes6,omitempty"` // BEP 32
	Token  string    `bencode:"token,omitempty"`
	Values Peers     `bencode:"values,omitempty"`
	// BEP 33 scrape filters. Pointers, so that an empty filter (no seeds)
	// is still sent and a node that does not scrape is told apart.
	BFsd *Bloom `bencode:"BFsd,omitempty"` // seeds' IPs
	BFpe *Bloom `bencode:"BFpe,omitempty"` // other peers' IPs
	// BEP 51. A non-nil empty Samples is sent as "samples0:", so an empty
	// store still answers with the key BEP 51 requires.
	Samples  Samples `bencode:"samples,omitempty"`
	Num      int     `bencode:"num,omitempty"`      // info-hashes the node stores
	Interval int     `bencode:"interval,omitempty"` // seconds before asking the node again
}

// BloomLen is the size in bytes of a BEP 33 bloom filter (m = 2048 bits).
const BloomLen = 256

// Bloom is a BEP 33 bloom filter of peer IPs, sent as a 256-byte string.
// Package dht fills and reads it.
type Bloom [BloomLen]byte

// MarshalBencode writes the 256-byte string.
func (f Bloom) MarshalBencode() ([]byte, error) { return bencode.Marshal(f[:]) }

// UnmarshalBencode accepts only a string of exactly 256 bytes: a filter of
// another size would make any estimate from it meaningless.
func (f *Bloom) UnmarshalBencode(b []byte) error {
	var s []byte
	if err := decodeBounded(b, &s); err != nil {
		return err
	}
	if len(s) != BloomLen {
		return fmt.Errorf("bloom filter: %d bytes, want %d", len(s), BloomLen)
	}
	*f = Bloom(s)
	return nil
}

// Samples is the BEP 51 "samples" key: info-hashes concatenated into one
// string.
type Samples []nodeid.ID

// MarshalBencode writes the info-hashes as one string.
func (s Samples) MarshalBencode() ([]byte, error) {
	b := make([]byte, 0, len(s)*nodeid.Len)
	for _, ih := range s {
		b = append(b, ih[:]...)
	}
	return bencode.Marshal(b)
}

// UnmarshalBencode rejects a string whose length is not a multiple of 20:
// a truncated info-hash is garbage, not a shorter one. A value that is not
// a string at all is not BEP 51's key but someone else's use of the name,
// so it is ignored like any unknown key (BEP 5) rather than failing the
// whole message.
func (s *Samples) UnmarshalBencode(b []byte) error {
	if len(b) == 0 || b[0] < '0' || b[0] > '9' {
		*s = nil
		return nil
	}
	var raw []byte
	if err := decodeBounded(b, &raw); err != nil {
		return err
	}
	if len(raw)%nodeid.Len != 0 {
		return fmt.Errorf("samples: %d bytes is not a multiple of %d", len(raw), nodeid.Len)
	}
	out := make(Samples, len(raw)/nodeid.Len)
	for i := range out {
		out[i] = nodeid.ID(raw[i*nodeid.Len : (i+1)*nodeid.Len])
	}
	*s = out
	return nil
}

// ReadOnly reports whether the sender flagged itself read-only (BEP 43).
func (m *Msg) ReadOnly() bool { return m.RO == 1 }

// SenderID is the node ID the message carries: a.id for queries, r.id for
// responses, and zero for errors, which carry none.
func (m *Msg) SenderID() nodeid.ID {
	switch {
	case m.A != nil:
		return m.A.ID
	case m.R != nil:
		return m.R.ID
	}
	return nodeid.ID{}
}
