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
	// ipVoters is how many distinct responders' views of our address are
	// kept; ipQuorum of them must agree, and be a majority, before we
	// believe them.
	ipVoters = 32
	ipQuorum = 4
	// maxBoundedValues is how many peers a get_peers answer carries under
	// an amplification bound: 24 IPv6 peers (21 bytes each on the wire)
	// and the rest of the answer fit krpc.AmplificationAllowance.
	maxBoundedValues = 24
)

func (n *Node) tableConfig() routing.Config {
	return routing.Config{RequireSecureIDs: !n.cfg.InsecureIDs, MaxPerSubnet: maxPerSubnet}
}

// ipVotes tallies what other nodes (the "ip" key of their answers, BEP 42)
// and peers (BEP 10 "yourip") say our address is. One vote per voter IP,
// the most recent ipVoters voters only, so a few liars cannot outvote the
// network and the tally stays small.
type ipVotes struct {
	byVoter  map[netip.Addr]netip.Addr
	order    []netip.Addr
	external netip.Addr
}

// add records a vote and reports the address a quorum now agrees on, if
// it changed.
func (v *ipVotes) add(voter, ip netip.Addr) (netip.Addr, bool) {
	if v.byVoter == nil {
		v.byVoter = make(map[netip.Addr]netip.Addr)
	}
	voter, ip = voter.Unmap(), ip.Unmap()
	if _, seen := v.byVoter[voter]; !seen {
		if len(v.order) == ipVoters {
			delete(v.byVoter, v.order[0])
			v.order = v.order[1:]
		}
		v.order = append(v.order, voter)
	}
	v.byVoter[voter] = ip
	counts := make(map[netip.Addr]int, 4)
	best, bestN := netip.Addr{}, 0
	for _, a := range v.byVoter {
		counts[a]++
		if counts[a] > bestN {
			best, bestN = a, counts[a]
		}
	}
	if bestN < ipQuorum || 2*bestN <= len(v.byVoter) || best == v.external {
		return v.external, false
	}
	v.external = best
	return best, true
}

// ReportExternalIP records that voter sees us at ip: BEP 10's "yourip"
// from a BitTorrent peer. Votes from DHT answers are recorded on their own.
func (n *Node) ReportExternalIP(voter, ip netip.Addr) {
	select {
	case n.events <- ipVoteEvent{voter: voter, ip: ip}:
	default: // a vote is not worth blocking for
	}
}

type ipVoteEvent struct{ voter, ip netip.Addr }

func (ipVoteEvent) isEvent() {}

// vote applies one vote; when the quorum's address changes and our ID is
// not valid for it, we take a BEP 42 ID for it, unless the user fixed our ID.
func (n *Node) vote(ev ipVoteEvent, now time.Time) {
	if !ev.ip.IsValid() || !ev.voter.IsValid() {
		return
	}
	ip, changed := n.votes.add(ev.voter, ev.ip)
	if !changed {
		return
	}
	n.log.Info("external address", zap.Stringer("ip", ip))
	if !n.cfg.ID.IsZero() || routing.BEP42Exempt(ip) || routing.IDMatchesIP(n.self, ip) {
		return
	}
	n.setID(routing.SecureID(ip, byte(n.rng.Uint32()), n.rng), now)
}

// setID changes our node ID. Every bucket depends on it, so the table is
// rebuilt from the nodes that have answered us.
func (n *Node) setID(id routing.ID, now time.Time) {
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
		n.ReportExternalIP(from.Addr(), r.IP.AddrPort().Addr())
	}
}
