package peertest

import "github.com/anacrolix/torrent"

// ClientConfigIPv6 returns an anacrolix client configuration that speaks
// IPv6 only, on ::1: IPv4 is off, and so is its DHT (peers are given to
// it, or it is dialled), with everything else that reaches beyond
// loopback off as in ClientConfig. Callers choose the storage.
func ClientConfigIPv6(dir string, seed bool) *torrent.ClientConfig {
	cfg := loopbackClient("::1", dir, seed)
	cfg.DisableIPv4 = true
	cfg.DisableIPv6 = false
	cfg.NoDHT = true
	return cfg
}
