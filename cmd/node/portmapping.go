package main

import (
	"net/netip"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"node/cmd/node/portmap"
	"node/dht"
	"node/peer"
)

// registerPortMapping offers --no-port-mapping: fetch, seed and dht keep
// their ports open long enough for a mapping on the home router to be
// worth asking for, so they ask by default.
func (f *dhtFlags) registerPortMapping(fs *pflag.FlagSet) {
	f.portMapOffered = true
	fs.BoolVar(&f.noPortMapping, "no-port-mapping", false,
		"do not ask the gateway (NAT-PMP, then UPnP IGD) to forward our TCP and UDP ports; by default they are mapped, "+
			"the mapping renewed and removed on exit, and the gateway's view of our address is one vote for our BEP 42 node ID")
	markGroup(fs, groupExpert, "no-port-mapping")
}

// startPortMapping maps the ports of sockets bound at local (tcp and udp,
// 0 for none) on the gateway, feeding the external address it reports to
// node's address vote and the external TCP port to onTCP (nil: nobody).
// It returns nil when mapping is off, or pointless: a gateway cannot
// forward to a loopback address.
func (f *dhtFlags) startPortMapping(local netip.Addr, tcp, udp uint16, node *dht.Node, onTCP func(uint16), log *zap.Logger) *portmap.Mapper {
	local = local.Unmap()
	if !f.portMapOffered || f.noPortMapping || local.IsLoopback() || (local.IsValid() && !local.Is4() && !local.IsUnspecified()) {
		return nil
	}
	cfg := f.portMapBase
	cfg.TCPPort, cfg.UDPPort, cfg.OnExternalIP, cfg.OnTCPPort, cfg.Logger = tcp, udp, node.ReportExternalIP, onTCP, log
	if local.Is4() && !local.IsUnspecified() {
		cfg.LocalIP = local
	}
	return portmap.Start(cfg)
}

// announceMapped is an onTCP for startPortMapping: the torrent announces
// the external port a gateway gave (DHT, trackers, BEP 10 p) when it is
// not local, the listener's own, which peers on the Internet could not
// reach.
func announceMapped(t *peer.Torrent, local uint16) func(uint16) {
	return func(ext uint16) {
		if ext == local {
			ext = 0
		}
		t.SetAnnouncePort(ext)
	}
}

// portMapStatus is m's status; the zero Status when m is nil.
func portMapStatus(m *portmap.Mapper) portmap.Status {
	if m == nil {
		return portmap.Status{}
	}
	return m.Status()
}

// closePortMapping removes m's mappings (bounded by portmap.CloseTimeout).
func closePortMapping(m *portmap.Mapper, log *zap.Logger) {
	if m == nil {
		return
	}
	if err := m.Close(); err != nil {
		log.Debug("removing port mappings", zap.Error(err))
	}
}

// mappedText is the mapped address for a status line, "" when nothing
// is mapped.
func mappedText(st portmap.Status) string {
	if !st.Mapped() {
		return ""
	}
	return st.String()
}
