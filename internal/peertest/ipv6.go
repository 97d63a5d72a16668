package peertest

import (
	"log/slog"

	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
)

// ClientConfigIPv6 returns an anacrolix client configuration that speaks
// IPv6 only, on ::1: IPv4 is off, and so is its DHT (peers are given to
// it, or it is dialled), with everything else that reaches beyond
// loopback off as in ClientConfig. Callers choose the storage.
func ClientConfigIPv6(dir string, seed bool) *torrent.ClientConfig {
	cfg := torrent.NewDefaultClientConfig()
	cfg.ListenHost = func(string) string { return "::1" }
	cfg.ListenPort = 0
	cfg.DisableIPv4 = true
	cfg.DisableIPv6 = false
	cfg.NoDHT = true
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
