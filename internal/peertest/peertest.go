// Package peertest supports tests and benchmarks that run an
// anacrolix/torrent (v1.59.1) client next to ours on loopback.
package peertest

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	adht "github.com/anacrolix/dht/v2"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"

	"node/dht"
	"node/internal/dhttest"
	"node/routing"
)

// WriterWakeEvery is the anacrolix client's keep-alive period in tests
// and benchmarks, far below its default of a minute (anacrolix's own
// test config uses a millisecond). v1.59.1's connection writer can miss
// a wake-up (anacrolix/torrent#1070, fixed in releases that do not build
// here): it runs fillWriteBuffer, drops the client lock, and only then
// takes the channel that the next Broadcast closes. A DownloadAll that
// lands in that gap marks the connection as needing new requests and
// broadcasts to nobody; later calls see the mark already set and
// broadcast nothing. Only a write of its own or the keep-alive timer
// wakes the writer after that, so a leecher that had just got the info
// from a seed waiting for its interest sat silent for a minute (seen
// under load in TestSeedDialsAnacrolixLeecher). The timer re-runs
// fillWriteBuffer every WriterWakeEvery, which bounds the stall. (The
// timer is re-armed only by a write; it writes a keep-alive whenever it
// fires on a connection that is useful to it, which a connection to a
// peer with pieces it wants is.)
const WriterWakeEvery = time.Second

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
	cfg := loopbackClient(ip, dir, seed)
	cfg.DisableIPv6 = true
	nodes := func() []netip.AddrPort { return boot }
	cfg.DhtStartingNodes = func(string) adht.StartingNodesGetter { return dhttest.StartingNodes(nodes) }
	cfg.ConfigureAnacrolixDhtServer = func(sc *adht.ServerConfig) { dhttest.Configure(sc, nodes) }
	return cfg, nil
}

// loopbackClient is what ClientConfig and ClientConfigIPv6 share: a
// client listening on ip, with trackers, web seeds, WebTorrent,
// UPnP/NAT-PMP and uTP off, silent logs, and the keep-alive period that
// bounds the lost wake-up (WriterWakeEvery).
func loopbackClient(ip, dir string, seed bool) *torrent.ClientConfig {
	cfg := torrent.NewDefaultClientConfig()
	cfg.ListenHost = func(string) string { return ip }
	cfg.ListenPort = 0
	cfg.NoDefaultPortForwarding = true
	cfg.DisableTrackers = true
	cfg.DisableWebtorrent = true
	cfg.DisableWebseeds = true
	cfg.DisableUTP = true
	cfg.Seed = seed
	cfg.DataDir = dir
	cfg.Slogger = slog.New(slog.DiscardHandler)
	cfg.Logger = alog.Default.WithFilterLevel(alog.Disabled)
	cfg.KeepAliveTimeout = WriterWakeEvery
	return cfg
}

// Lookup is the peers one get_peers lookup from n finds for ih, within
// 5 s.
func Lookup(ctx context.Context, n *dht.Node, ih [20]byte) []netip.AddrPort {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	found := make(chan netip.AddrPort)
	got := make(chan []netip.AddrPort, 1)
	go func() {
		var out []netip.AddrPort
		for a := range found {
			out = append(out, a)
		}
		got <- out
	}()
	_, _ = n.GetPeers(lctx, routing.ID(ih), found)
	close(found)
	return <-got
}

// WaitAnnounced polls our DHT, with get_peers lookups from n, until want is
// among the peers stored for ih, for at most d. It returns the peers the
// last lookup saw, for the caller's error message.
func WaitAnnounced(ctx context.Context, n *dht.Node, ih [20]byte, want netip.AddrPort, d time.Duration) ([]netip.AddrPort, error) {
	deadline := time.Now().Add(d)
	var seen []netip.AddrPort
	for time.Now().Before(deadline) {
		seen = Lookup(ctx, n, ih)
		if slices.Contains(seen, want) {
			return seen, nil
		}
		if err := ctx.Err(); err != nil {
			return seen, err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return seen, fmt.Errorf("%v not announced for %x after %v (the DHT has %v)", want, ih, d, seen)
}
