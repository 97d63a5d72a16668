package adversary

import (
	"errors"
	"net"
	"net/netip"
	"strconv"

	"node/krpc"
	"node/routing"
)

// BEP 32 family lies: a node that answers with contacts of the wrong
// address family, in the wrong key, or in a key of the wrong size, hoping
// to get them queried (a reflection through us), stored, or to break the
// decoder.

// FamilyLie picks what FamilyLiar puts in its answers.
type FamilyLie int

const (
	// Nodes6Garbage: a nodes6 string whose length is not a multiple of 38.
	Nodes6Garbage FamilyLie = iota
	// V6InNodes: an IPv6 node record (38 bytes) in the IPv4 "nodes" key.
	V6InNodes
	// MappedNodes6: nodes6 records holding IPv4-mapped IPv6 addresses,
	// an IPv4 node smuggled into the IPv6 key.
	MappedNodes6
	// UnaskedNodes6: well-formed nodes6 in every answer, whatever the
	// querier's want, to a querier of the other family.
	UnaskedNodes6
)

// FamilyLiar is a reply function for ServeRaw: a node with ID id that
// answers every query with its ID, a token, and the lie, naming the
// contacts given (their addresses are what the lie carries: an IPv4 one
// mapped for MappedNodes6, IPv6 ones otherwise).
func FamilyLiar(id routing.ID, lie FamilyLie, contacts []routing.Contact) func(q *krpc.Msg, from netip.AddrPort) []byte {
	return func(q *krpc.Msg, _ netip.AddrPort) []byte {
		var recs []byte
		for _, c := range contacts {
			recs = append(recs, c.ID[:]...)
			a16 := c.Addr.Addr().As16() // IPv4 as ::ffff:a.b.c.d
			recs = append(recs, a16[:]...)
			recs = append(recs, byte(c.Addr.Port()>>8), byte(c.Addr.Port()))
		}
		key := "nodes6"
		switch lie {
		case Nodes6Garbage:
			recs = append(recs, 0) // one byte too many
		case V6InNodes:
			key = "nodes"
		}
		// Keys in order: id, nodes|nodes6, token.
		b := []byte("d1:rd2:id20:")
		b = append(b, id[:]...)
		b = strconv.AppendInt(append(b, strconv.Itoa(len(key))+":"+key...), int64(len(recs)), 10)
		b = append(append(b, ':'), recs...)
		b = append(b, "5:token4:liare1:t"...)
		b = strconv.AppendInt(b, int64(len(q.T)), 10)
		b = append(append(b, ':'), q.T...)
		return append(b, "1:y1:re"...)
	}
}

// ServeRaw is Serve with replies as raw bytes, for answers the codec would
// refuse to write.
func (n *Node) ServeRaw(reply func(q *krpc.Msg, from netip.AddrPort) []byte) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			k, from, err := n.Conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			m, err := krpc.Parse(buf[:k])
			if err != nil || m.Y != krpc.KindQuery {
				continue
			}
			if b := reply(&m, from); b != nil {
				_ = n.SendRaw(from, b)
			}
		}
	}()
}

// WantFlood is the arguments of a find_node or get_peers for target whose
// BEP 32 want lists "n4" and "n6" count times each: both families, asked
// for over and over in one datagram.
func WantFlood(id, target routing.ID, count int) *krpc.Args {
	w := make([]string, 0, 2*count)
	for range count {
		w = append(w, "n4", "n6")
	}
	return &krpc.Args{ID: id, Target: &target, InfoHash: &target, Want: w}
}
