package adversary

import (
	"net/netip"

	"node/krpc"
	"node/routing"
)

// Reply sends to to a response with transaction ID tid and node ID id. It
// is the genuine answer when tid is that of a query to n, a forgery when
// n is standing in for a node that to awaits an answer from and tid is a
// guess.
func (n *Node) Reply(to netip.AddrPort, tid string, id routing.ID) error {
	return n.Send(to, &krpc.Msg{T: tid, Y: krpc.KindResponse, R: &krpc.Return{ID: id}})
}

// ReplyFlood sends count well-formed responses to to, the i-th with
// transaction ID tid(i): datagrams shaped like answers that answer nothing
// to asked, as sent by a node it is querying, from another port or with
// made-up IDs, to slip past a rate limit that spares replies.
func (n *Node) ReplyFlood(to netip.AddrPort, count int, tid func(i int) string) error {
	for i := range count {
		if err := n.Reply(to, tid(i), routing.ID{0xee}); err != nil {
			return err
		}
	}
	return nil
}

// NextTxIDs returns the count transaction IDs that follow tid when IDs
// are a big-endian counter, as a node that saw tid in a query to itself
// would guess the IDs of the next queries its sender makes to others.
func NextTxIDs(tid string, count int) []string {
	out := make([]string, 0, count)
	b := []byte(tid)
	for range count {
		for i := len(b) - 1; i >= 0; i-- {
			b[i]++
			if b[i] != 0 {
				break
			}
		}
		out = append(out, string(b))
	}
	return out
}
