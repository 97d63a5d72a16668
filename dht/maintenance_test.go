package dht

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/testutil"
	"node/routing"
)

// fakeClock is a clock tests move by hand; safe for the loop to read.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// After 15 quiet minutes (BEP 5) the node must refresh its buckets and
// ping the nodes that went questionable, without anyone asking it to.
func TestMaintenanceRefreshesAndPings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := newFakeClock()
	nodes := startOurs(t, 21, 12, nil, nil)
	bootstrapAll(t, ctx, nodes)
	n, err := New(Config{
		Conn:         listenLoopback(t, 21, 100),
		Bootstrap:    []string{nodes[0].Addr().String()},
		Now:          clock.Now,
		TickInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if _, err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	stats := func() Stats {
		s, err := n.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Bootstrap leaves the node-cache fill running: wait until it is done
	// (nothing sent for 100 ms) before checking that the node is quiet.
	before := stats()
	testutil.WaitFor(t, 10*time.Second, "the cache fill to finish", func() bool {
		time.Sleep(100 * time.Millisecond)
		s := stats()
		quiet := s.Transport.QueriesOut == before.Transport.QueriesOut
		before = s
		return quiet
	})
	if before.Good == 0 {
		t.Fatalf("no good nodes after bootstrap: %+v", before)
	}
	// Nothing is due yet: the tick generates no traffic of its own. (A
	// verification ping of a node that queried us may still go out, so
	// the check is "fewer than one a node", the contrast with what follows.)
	time.Sleep(50 * time.Millisecond)
	if s := stats(); s.Transport.QueriesOut-before.Transport.QueriesOut >= uint64(before.Nodes) {
		t.Fatalf("%d queries sent with nothing due", s.Transport.QueriesOut-before.Transport.QueriesOut)
	}
	before = stats()

	clock.Advance(routing.RefreshAfter + time.Minute)
	// Every node went questionable; the pings and refresh lookups that
	// follow make them good again.
	testutil.WaitFor(t, 10*time.Second, "questionable nodes to be pinged back to good", func() bool {
		s := stats()
		return s.Transport.QueriesOut > before.Transport.QueriesOut+uint64(before.Nodes) && s.Good >= before.Good
	})
}
