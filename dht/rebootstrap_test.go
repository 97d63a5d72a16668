package dht

import (
	"context"
	"net"
	"testing"
	"time"

	"node/internal/testutil"
)

// A node whose bootstrap address is dead at start does not go silent: it
// keeps retrying, backing off, and joins once a node answers there.
func TestRebootstrapWithBackoff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Reserve an address, then leave it dead for now.
	hold := listenLoopback(t, 22, 1)
	bootAddr := hold.LocalAddr().String()
	hold.Close()

	clock := newFakeClock()
	n, err := New(Config{
		Conn:         listenLoopback(t, 22, 2),
		Bootstrap:    []string{bootAddr},
		Now:          clock.Now,
		TickInterval: 5 * time.Millisecond,
		QueryTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	stats := func() Stats {
		s, err := n.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Two failed attempts, each a query that times out.
	for i := 1; i <= 2; i++ {
		clock.Advance(6 * time.Minute) // past any back-off
		testutil.WaitFor(t, 5*time.Second, "a bootstrap attempt", func() bool { return stats().Transport.Timeouts >= uint64(i) })
	}
	if s := stats(); s.Nodes != 0 {
		t.Fatalf("joined a dead network: %+v", s)
	}
	// The bootstrap node comes up at the address it was told.
	pc, err := net.ListenPacket("udp4", bootAddr)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := New(Config{Conn: pc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { boot.Close() })
	testutil.WaitFor(t, 10*time.Second, "joining once the bootstrap node answers", func() bool {
		clock.Advance(time.Minute)
		return stats().Nodes > 0
	})
}
