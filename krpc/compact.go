package krpc

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"

	"node/krpc/nodeid"
)

// Record sizes of the compact encodings (BEP 5, BEP 32).
const (
	NodeInfoLen  = nodeid.Len + 6  // IPv4 node: ID, IP, port
	NodeInfo6Len = nodeid.Len + 18 // IPv6 node
	PeerLen      = 6               // IPv4 peer: IP, port
	Peer6Len     = 18              // IPv6 peer
)

// NodeInfo is a node as the compact node encoding carries it.
type NodeInfo = nodeid.Contact

// Nodes is the "nodes" key: IPv4 node infos concatenated into one string.
type Nodes []NodeInfo

// Nodes6 is the BEP 32 "nodes6" key: IPv6 node infos.
type Nodes6 []NodeInfo

// Peers is the "values" key: a list of compact peer strings (6 bytes for
// IPv4, 18 for IPv6).
type Peers []netip.AddrPort

// Addr is a single compact address, as in the BEP 42 "ip" key.
type Addr netip.AddrPort

// AddrPort returns the address as a netip value.
func (a Addr) AddrPort() netip.AddrPort { return netip.AddrPort(a) }

// AppendAddrPort appends the compact form of ap: 4 or 16 address bytes, then
// the port big-endian. IPv4-mapped IPv6 addresses are written as IPv4.
func AppendAddrPort(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	b = append(b, a.AsSlice()...)
	return append(b, byte(ap.Port()>>8), byte(ap.Port()))
}

// ParseAddrPort decodes a 6- or 18-byte compact address.
func ParseAddrPort(b []byte) (netip.AddrPort, error) {
	var a netip.Addr
	switch len(b) {
	case PeerLen:
		a = netip.AddrFrom4([4]byte(b[:4]))
	case Peer6Len:
		a = netip.AddrFrom16([16]byte(b[:16])).Unmap()
	default:
		return netip.AddrPort{}, fmt.Errorf("compact address: %d bytes, want %d or %d", len(b), PeerLen, Peer6Len)
	}
	port := uint16(b[len(b)-2])<<8 | uint16(b[len(b)-1])
	return netip.AddrPortFrom(a, port), nil
}

func appendNodes(b []byte, ns []NodeInfo, is4 bool) []byte {
	for _, n := range ns {
		if !n.Addr.IsValid() || n.Addr.Addr().Unmap().Is4() != is4 {
			continue // a node of the other family belongs in the other key
		}
		b = append(b, n.ID[:]...)
		b = AppendAddrPort(b, n.Addr)
	}
	return b
}

func parseNodes(b []byte, size int) ([]NodeInfo, error) {
	var s []byte
	if err := decodeBounded(b, &s); err != nil {
		return nil, err
	}
	if len(s)%size != 0 {
		return nil, fmt.Errorf("compact nodes: %d bytes is not a multiple of %d", len(s), size)
	}
	ns := make([]NodeInfo, 0, len(s)/size)
	for i := 0; i < len(s); i += size {
		rec := s[i : i+size]
		var n NodeInfo
		copy(n.ID[:], rec[:nodeid.Len])
		n.Addr, _ = ParseAddrPort(rec[nodeid.Len:]) // length is right by construction
		if n.Addr.Addr().Is4() != (size == NodeInfoLen) {
			// An IPv4-mapped address in nodes6 is an IPv4 node in the wrong
			// key; keeping it would make the list change family on re-encode.
			continue
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// MarshalBencode writes the IPv4 nodes as one string; others are skipped.
func (ns Nodes) MarshalBencode() ([]byte, error) {
	return bencode.Marshal(appendNodes(make([]byte, 0, len(ns)*NodeInfoLen), ns, true))
}

// UnmarshalBencode rejects a string whose length is not a multiple of 26.
func (ns *Nodes) UnmarshalBencode(b []byte) error {
	v, err := parseNodes(b, NodeInfoLen)
	*ns = v
	return err
}

// MarshalBencode writes the IPv6 nodes as one string; others are skipped.
func (ns Nodes6) MarshalBencode() ([]byte, error) {
	return bencode.Marshal(appendNodes(make([]byte, 0, len(ns)*NodeInfo6Len), ns, false))
}

// UnmarshalBencode rejects a string whose length is not a multiple of 38.
func (ns *Nodes6) UnmarshalBencode(b []byte) error {
	v, err := parseNodes(b, NodeInfo6Len)
	*ns = v
	return err
}

// MarshalBencode writes a list of compact peer strings.
func (ps Peers) MarshalBencode() ([]byte, error) {
	l := make([][]byte, 0, len(ps))
	for _, p := range ps {
		if p.IsValid() {
			l = append(l, AppendAddrPort(nil, p))
		}
	}
	return bencode.Marshal(l)
}

// UnmarshalBencode rejects any entry that is not a 6- or 18-byte string.
func (ps *Peers) UnmarshalBencode(b []byte) error {
	var l [][]byte
	if err := decodeBounded(b, &l); err != nil {
		return err
	}
	out := make(Peers, 0, len(l))
	for _, s := range l {
		p, err := ParseAddrPort(s)
		if err != nil {
			return fmt.Errorf("values: %w", err)
		}
		out = append(out, p)
	}
	*ps = out
	return nil
}

// MarshalBencode writes the compact address string.
func (a Addr) MarshalBencode() ([]byte, error) {
	return bencode.Marshal(AppendAddrPort(nil, netip.AddrPort(a)))
}

// UnmarshalBencode accepts a 6- or 18-byte string.
func (a *Addr) UnmarshalBencode(b []byte) error {
	var s []byte
	if err := decodeBounded(b, &s); err != nil {
		return err
	}
	ap, err := ParseAddrPort(s)
	if err != nil {
		return errors.New("ip: " + err.Error())
	}
	*a = Addr(ap)
	return nil
}
