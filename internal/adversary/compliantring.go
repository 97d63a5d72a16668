package adversary

import (
	"math/rand/v2"
	"net/netip"
	"slices"

	"node/routing"
)

// The compliant liar ring: a liar ring (LiarRing) that knows BEP 42.
// Instead of IDs made up next to the target, which no address of its own
// makes valid, it names each member under the valid ID nearest the target
// that member's address allows: of the 8 prefixes BEP 42 gives one
// address (one per r), the one sharing most leading bits with the target,
// then the target's own bits up to the last byte, which must be r. It
// names the K members whose IDs come nearest. The more addresses the ring
// owns, the nearer its best ones get; a lookup that ranks valid IDs first
// is then beaten only by how many addresses the attacker owns, not by
// what it says.

// compliantMemory bounds the targets whose rankings the ring keeps.
const compliantMemory = 1024

// NewCompliantLiarRing is NewLiarRing whose members are named under IDs
// BEP 42 makes valid for their addresses.
func NewCompliantLiarRing(members map[netip.AddrPort]routing.ID, fakePeers int, seed uint64) *LiarRing {
	g := NewLiarRing(members, fakePeers, seed)
	g.compliant = make(map[routing.ID][]routing.Contact)
	return g
}

// nearestValid is, for each member but self, the valid ID nearest target,
// the K nearest of them; g.mu is held.
func (g *LiarRing) nearestValid(target routing.ID, self netip.AddrPort) []routing.Contact {
	all, ok := g.compliant[target]
	if !ok {
		if len(g.compliant) >= compliantMemory {
			clear(g.compliant)
		}
		all = make([]routing.Contact, 0, len(g.members))
		rnd := rand.New(rand.NewPCG(1, 2)) // SecureID's free bits are overwritten
		for _, m := range g.members {
			best, bestLen := routing.ID{}, -1
			for r := range byte(8) {
				id := routing.SecureID(m.Addr(), r, rnd)
				if l := routing.CommonPrefixLen(id, target); l > bestLen {
					best, bestLen = id, l
				}
			}
			// Past the fixed 21 bits, copy the target, up to the last
			// byte, which is r.
			id := target
			id[0], id[1] = best[0], best[1]
			id[2] = best[2]&0xf8 | target[2]&7
			id[len(id)-1] = best[len(best)-1]
			all = append(all, routing.Contact{ID: id, Addr: m})
		}
		slices.SortFunc(all, func(a, b routing.Contact) int {
			return a.ID.Distance(target).Cmp(b.ID.Distance(target))
		})
		if len(all) > routing.K+1 {
			all = all[:routing.K+1]
		}
		g.compliant[target] = all
	}
	out := make([]routing.Contact, 0, routing.K)
	for _, c := range all {
		if c.Addr != self && len(out) < routing.K {
			out = append(out, c)
		}
	}
	return out
}
