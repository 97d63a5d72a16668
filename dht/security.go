package dht

import (
	"net/netip"
	"time"

	"go.uber.org/zap"

	"node/krpc"
	"node/routing"
)

// BEP 42 and routing-table diversity.
const (
	// maxPerSubnet is how many nodes of one /24 (/64 for IPv6) a bucket
	// may hold: one address block cannot crowd out the rest of the
	// network. Local and private ranges are exempt, as BEP 42 says.
	maxPerSubnet = 1
	// ipVoters is how many voters' views of our address are kept, the
	// most recent ones. A voter is a /24 (/64 for IPv6), not an address,
	// so that one block of addresses is one vote.
	ipVoters = 32
	// ipQuorum is how many voters must agree on an address, and
	// ipMajorityNum/ipMajorityDen the share of all voters they must be
	// more than, before we believe them.
	ipQuorum      = 4
	ipMajorityNum = 2
	ipMajorityDen = 3
	// ipSustain is how long an address must keep that majority before we
	// adopt it, so that a burst of liars does not move us.
	ipSustain = time.Minute
	// minIDChangeInterval is how long an adopted address is kept before
	// another may replace it, and with it our node ID: each change costs
	// our place in other nodes' tables. The first adoption is not held
	// back.
	minIDChangeInterval = 30 * time.Minute
	// maxBoundedValues is how many peers a get_peers answer carries under
	// an amplification bound: 24 IPv6 peers (21 bytes each on the wire)
	// and the rest of the answer fit krpc.AmplificationAllowance.
	maxBoundedValues = 24
)

func (n *Node) tableConfig() routing.Config {
	return routing.Config{RequireSecureIDs: !n.cfg.InsecureIDs, MaxPerSubnet: maxPerSubnet}
}

// ipVotes tallies what other nodes (the "ip" key of their answers, BEP 42)
// and peers (BEP 10 "yourip") say our address is: one vote per voter
// prefix (voterPrefix), the last one it cast, from the most recent
// ipVoters prefixes only, so a few liars, or one liar with many addresses
// or many handshakes, cannot outvote the network, and the tally stays
// small. An address is adopted once it has held a clear majority for
// ipSustain, and at most once per minIDChangeInterval.
type ipVotes struct {
	byVoter     map[netip.Prefix]netip.Addr
	order       []netip.Prefix
	external    netip.Addr
	adopted     time.Time  // when external was adopted
	leader      netip.Addr // the address holding a clear majority, if any
	leaderSince time.Time
}

// voterPrefix is the block of addresses that has one vote.
func voterPrefix(voter netip.Addr) netip.Prefix {
	bits := 64
	if voter.Is4() {
		bits = 24
	}
	p, _ := voter.Prefix(bits) // cannot fail for a valid address
	return p
}

// add records voter's vote and reports the address now adopted, and
// whether that changed.
func (v *ipVotes) add(voter, ip netip.Addr, now time.Time) (netip.Addr, bool) {
	if v.byVoter == nil {
		v.byVoter = make(map[netip.Prefix]netip.Addr)
	}
	k := voterPrefix(voter.Unmap())
	if _, seen := v.byVoter[k]; !seen {
		if len(v.order) == ipVoters {
			delete(v.byVoter, v.order[0])
			v.order = v.order[1:]
		}
		v.order = append(v.order, k)
	}
	v.byVoter[k] = ip.Unmap()
	return v.check(now)
}

// check adopts the leading address if it has kept a clear majority long
// enough and the last adoption is old enough. It runs at every vote and
// every tick, since time alone can make the leader due.
func (v *ipVotes) check(now time.Time) (netip.Addr, bool) {
	counts := make(map[netip.Addr]int, 4)
	best, bestN := netip.Addr{}, 0
	for _, a := range v.byVoter {
		counts[a]++
		if counts[a] > bestN {
			best, bestN = a, counts[a]
		}
	}
	if bestN < ipQuorum || ipMajorityDen*bestN <= ipMajorityNum*len(v.byVoter) || best == v.external {
		v.leader = netip.Addr{}
		return v.external, false
	}
	if best != v.leader {
		v.leader, v.leaderSince = best, now
	}
	if now.Sub(v.leaderSince) < ipSustain || (v.external.IsValid() && now.Sub(v.adopted) < minIDChangeInterval) {
		return v.external, false
	}
	v.external, v.adopted = best, now
	return best, true
}

// ReportExternalIP records that voter sees us at ip: BEP 10's "yourip"
// from a BitTorrent peer. Votes from DHT answers are recorded on their own.
// A voter may report as often as it likes: only its /24 (/64)'s last
// report counts.
func (n *Node) ReportExternalIP(voter, ip netip.Addr) {
	if h := n.half(ip); h != nil {
		h.reportIP(voter, ip)
	}
}

func (n *Node) reportIP(voter, ip netip.Addr) {
	select {
	case n.events <- ipVoteEvent{voter: voter, ip: ip}:
	default: // a vote is not worth blocking for
	}
}

type ipVoteEvent struct{ voter, ip netip.Addr }

func (ipVoteEvent) isEvent() {}

// vote applies one vote. A voter sees our address of its own family, and
// an IPv4 socket has no IPv6 address. A dual-stack socket has both, each
// in its own tally.
func (n *Node) vote(ev ipVoteEvent, now time.Time) {
	voter, ip := ev.voter.Unmap(), ev.ip.Unmap()
	if !ip.IsValid() || !voter.IsValid() || ip.Is4() != voter.Is4() || !n.serves(familyOf(ip)) ||
		ip.IsUnspecified() || ip.IsMulticast() {
		return
	}
	v := &n.votes6
	if ip.Is4() {
		v = &n.votes4
	}
	adopted, changed := v.add(voter, ip, now)
	n.tallied(v, adopted, changed)
}

// checkVotes adopts what a tally's lasting majority says, as time alone
// can make it due.
func (n *Node) checkVotes(now time.Time) {
	for _, v := range []*ipVotes{&n.votes4, &n.votes6} {
		if v.leader.IsValid() {
			ip, changed := v.check(now)
			n.tallied(v, ip, changed)
		}
	}
}

// idVotes is the tally our ID derives from: the IPv4 one, unless the
// socket has no IPv4.
func (n *Node) idVotes() *ipVotes {
	if n.v6only {
		return &n.votes6
	}
	return &n.votes4
}

// tallied acts on v's verdict: ip is the address it has adopted, and
// changed says whether it just did.
func (n *Node) tallied(v *ipVotes, ip netip.Addr, changed bool) {
	if v != n.idVotes() {
		if changed {
			n.log.Info("external address", zap.Stringer("ip", ip))
		}
		return
	}
	n.adoptIP(ip, changed)
}

// adoptIP acts on the tally's verdict: when the adopted address changed
// and our ID is not valid for it, we take a BEP 42 ID for it, unless the
// user fixed our ID.
func (n *Node) adoptIP(ip netip.Addr, changed bool) {
	if !changed {
		return
	}
	n.log.Info("external address", zap.Stringer("ip", ip))
	if !n.cfg.ID.IsZero() || routing.BEP42Exempt(ip) || routing.IDMatchesIP(n.self, ip) {
		return
	}
	n.setID(routing.SecureID(ip, byte(n.rng.Uint32()), n.rng))
}

// setID changes our node ID. Every bucket depends on it, so the table is
// rebuilt from the nodes that have answered us.
func (n *Node) setID(id routing.ID) {
	old := n.table.Entries()
	n.self = id
	n.selfShared.Store(&id)
	n.table = routing.New(id, n.tableConfig())
	for _, e := range old {
		if !e.LastResponse.IsZero() {
			n.table.Responded(e.Contact, e.LastResponse)
		}
	}
	n.viewDirty = true
	n.log.Info("new node ID for our external address (BEP 42)", zap.Stringer("id", id))
}

// noteIP passes on a response's view of our address (BEP 42 "ip").
func (n *Node) noteIP(from netip.AddrPort, r *krpc.Msg) {
	if r != nil && r.IP != nil {
		n.reportIP(from.Addr(), r.IP.AddrPort().Addr())
	}
}
