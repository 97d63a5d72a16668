package peer

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkFastFetch fetches 32 MiB from one seeder of ours on loopback,
// with the Fast extension on both sides and with it off on both: the
// trackerless path should cost the same either way.
func BenchmarkFastFetch(b *testing.B) {
	src := b.TempDir()
	mi := makeContent(b, src, "content", map[string]int{"f": 32 << 20}, 256<<10)
	for _, tc := range []struct {
		name   string
		noFast bool
	}{{"fast", false}, {"plain", true}} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp4", "127.0.204.1:0")
			if err != nil {
				b.Fatal(err)
			}
			runTorrent(b, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true, noFast: tc.noFast})
			b.SetBytes(mi.Info.Length)
			for b.Loop() {
				// Each leecher stops before the next starts: the seeder
				// takes maxConnsPerIP from one address.
				tor, err := New(Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: b.TempDir(),
					Peers: []netip.AddrPort{addrOf(ln.Addr())}, noFast: tc.noFast})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- tor.Run(ctx) }()
				waitDone(b, tor, time.Minute)
				cancel()
				<-done
			}
		})
	}
}
