// Package swarmtest runs in-process torrents of ours for the tests of the
// packages above peer (cmd/node, cmd/node/daemon): a torrent that runs
// until the test ends, and a seeder that a DHT lookup finds. peer's own
// tests cannot import it (it imports peer).
package swarmtest

import (
	"context"
	"net"
	"testing"
	"time"

	"node/dht"
	"node/peer"
)

// SeedTimeout bounds a seeder's start: joining the DHT, and verifying its
// data.
const SeedTimeout = 20 * time.Second

// Run runs a torrent of cfg until the test ends.
func Run(t testing.TB, cfg peer.Config) *peer.Torrent {
	t.Helper()
	tor, err := peer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tor.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return tor
}

// Seed runs cfg, whose Listener is on a loopback TCP address, as a seeder
// announced through a DHT node of its own, on the same address over UDP,
// joined through boot. It returns once the seeder has verified its data;
// both run until the test ends.
func Seed(t testing.TB, boot string, cfg peer.Config) *peer.Torrent {
	t.Helper()
	pc, err := net.ListenPacket("udp4", cfg.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	node, err := dht.New(dht.Config{Conn: pc, Bootstrap: []string{boot}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), SeedTimeout)
	defer cancel()
	if _, err := node.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.DHT = node
	tor := Run(t, cfg)
	select {
	case <-tor.Done():
	case <-time.After(SeedTimeout):
		t.Fatal("the seeder did not verify its data")
	}
	return tor
}
