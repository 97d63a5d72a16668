package peer

import (
	"context"
	"net"
	"net/netip"
	"time"

	"node/peer/wire"
)

// dialTimeout bounds the TCP connect of the default Dial.
const dialTimeout = 5 * time.Second

// listenPort is the port peers reach us on: the first listener's, 0 with
// none.
func (t *Torrent) listenPort() int {
	if len(t.lns) == 0 {
		return 0
	}
	return int(addrOf(t.lns[0].Addr()).Port())
}

// listenIPs are the specific IPs the listeners are bound to, the first of
// each family; wildcard listeners give none.
func listenIPs(lns []net.Listener) []netip.Addr {
	var out []netip.Addr
	for _, ln := range lns {
		ip := addrOf(ln.Addr()).Addr()
		if !ip.IsValid() || ip.IsUnspecified() || ourIP(out, ip.Is4()).IsValid() {
			continue
		}
		out = append(out, ip)
	}
	return out
}

// ourIP is the IP of ours of the family asked for, if any.
func ourIP(ours []netip.Addr, v4 bool) netip.Addr {
	for _, ip := range ours {
		if ip.Is4() == v4 {
			return ip
		}
	}
	return netip.Addr{}
}

// dialFrom connects to a from our listening IP of a's family, if we listen
// on a specific one: a host with several addresses, or a test with one
// loopback address per peer, must be seen by its peers at the address it
// listens on, not the one the kernel's routing picks (127.0.0.1 on
// loopback, whatever the listen address). With a wildcard listener the
// kernel picks.
func dialFrom(ctx context.Context, a netip.AddrPort, ours []netip.Addr) (net.Conn, error) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	d := net.Dialer{Timeout: dialTimeout}
	network := "tcp6"
	if a.Addr().Is4() {
		network = "tcp4"
	}
	if ip := ourIP(ours, a.Addr().Is4()); ip.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	return d.DialContext(ctx, network, a.String())
}

// addrHints takes the addresses a peer says it also has (BEP 7 ipv4 and
// ipv6, with its listen port) as candidates named by that peer: the
// address rules and per-source bounds of any source apply, they are
// dialled after the DHT's, and one per family per connection is taken,
// so that a peer repeating its handshake gets no more in.
func (t *Torrent) addrHints(ps *peerState, h wire.ExtendedHandshake, now time.Time) {
	if h.P != 0 {
		ps.listenPort = uint16(h.P)
	}
	port := ps.listenPort
	if port == 0 && ps.c.outgoing {
		port = ps.c.addr.Port()
	}
	if port == 0 {
		return
	}
	take := func(ip netip.Addr, done *bool) {
		if *done || ip == ps.c.addr.Addr() {
			return
		}
		*done = true
		if cd := t.addCandidateFrom(netip.AddrPortFrom(ip, port), ps.c.addr, fromHint, false, now); cd != nil {
			cd.by = ps.c.hs.PeerID
		}
	}
	if ip, ok := h.Addr4(); ok {
		take(ip, &ps.hinted4)
	}
	if ip, ok := h.Addr6(); ok {
		take(ip, &ps.hinted6)
	}
}

// seedListenPort takes the listen port of a seed about to be closed from
// the extended handshake among rest, the messages of its batch after the
// one that showed it a seed: the bitfield comes first (BEP 3), and
// without the port seedClosed would cover only the port it dialled us
// from, not the one our lookups find it at.
func (t *Torrent) seedListenPort(ps *peerState, rest []inMsg) {
	if ps.listenPort != 0 {
		return
	}
	for _, im := range rest {
		if im.m.Type != wire.Extended || im.m.ExtendedID != 0 {
			continue
		}
		if h, err := wire.ParseExtendedHandshake(im.m.Payload); err == nil && h.P > 0 && h.P < 1<<16 {
			ps.listenPort = uint16(h.P)
		}
		return
	}
}

// seedClosed keeps a seed we closed (see bothSeeds) from being dialled
// again for seedRedialAfter, at the address we dialled and at the one it
// said it listens on.
func (t *Torrent) seedClosed(c *conn, ps *peerState, now time.Time) {
	until := now.Add(seedRedialAfter)
	addrs := []netip.AddrPort{c.addr}
	if ps.listenPort != 0 {
		addrs = append(addrs, netip.AddrPortFrom(c.addr.Addr(), ps.listenPort))
	}
	for _, a := range addrs {
		if cd := t.known[a]; cd != nil && until.After(cd.next) {
			cd.next = until
		}
	}
}
