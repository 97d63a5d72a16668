// Package peertest supports tests and benchmarks that run an
// anacrolix/torrent (v1.59.1) client next to ours on loopback.
package peertest

import (
	"fmt"
	"log/slog"
	"net/netip"

	adht "github.com/anacrolix/dht/v2"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"

	"node/dht/dhttest"
)

// ClientConfig returns an anacrolix client configuration that listens
// (TCP, and UDP for its DHT server) on ip and whose DHT starts from boot
// only. Everything that reaches beyond loopback is off: trackers, web
// seeds, WebTorrent, UPnP/NAT-PMP, the public bootstrap routers, IPv6; so
// is uTP, which we compare over TCP. Callers choose the storage.
func ClientConfig(ip, dir string, seed bool, boot []netip.AddrPort) (*torrent.ClientConfig, error) {
	if a, err := netip.ParseAddr(ip); err != nil || !a.IsLoopback() {
		return nil, fmt.Errorf("%q is not a loopback address", ip)
	}
	for _, b := range boot {
		if !b.Addr().IsLoopback() {
			return nil, fmt.Errorf("DHT node %v is not on loopback", b)
		}
	}
	cfg := torrent.NewDefaultClientConfig()
	cfg.ListenHost = func(string) string { return ip }
	cfg.ListenPort = 0
	cfg.NoDefaultPortForwarding = true
	cfg.DisableIPv6 = true
	cfg.DisableTrackers = true
	cfg.DisableWebtorrent = true
	cfg.DisableWebseeds = true
	cfg.DisableUTP = true
	cfg.Seed = seed
	cfg.DataDir = dir
	cfg.Slogger = slog.New(slog.DiscardHandler)
	cfg.Logger = alog.Default.WithFilterLevel(alog.Disabled)
	nodes := func() []netip.AddrPort { return boot }
	cfg.DhtStartingNodes = func(string) adht.StartingNodesGetter { return dhttest.StartingNodes(nodes) }
	cfg.ConfigureAnacrolixDhtServer = func(sc *adht.ServerConfig) { dhttest.Configure(sc, nodes) }
	return cfg, nil
}
