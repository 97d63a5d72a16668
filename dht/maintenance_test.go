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
// The network is in memory, and each step waits for the tick it is about.
func TestMaintenanceRefreshesAndPings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := newMemNet()
	inMemory := func(c *Config) {
		ip := localAddr(c.Conn).Addr().String()
		c.Conn.Close()
		c.Conn = mem.listen(t, ip)
	}
	nodes := startOurs(t, 21, 12, nil, inMemory)
	bootstrapAll(t, ctx, nodes)
	clock := newFakeClock()
	// A tick is reported only while the test waits for one, so the one it
	// gets is never stale by more than the clock check below allows for.
	ticks := make(chan tickReport)
	n, err := New(Config{
		Conn:         mem.listen(t, "127.0.21.100"),
		Bootstrap:    []string{nodes[0].Addr().String()},
		Now:          clock.Now,
		TickInterval: 5 * time.Millisecond,
		afterTick: func(r tickReport) {
			select {
			case ticks <- r:
			default:
			}
		},
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
	// nextTick is the first tick that reads the clock at since or later.
	nextTick := func(since time.Time) tickReport {
		t.Helper()
		for {
			select {
			case r := <-ticks:
				if !r.now.Before(since) {
					return r
				}
			case <-ctx.Done():
				t.Fatal("no tick")
			}
		}
	}
	// Bootstrap leaves the node-cache fill running: wait until a tick
	// finds nothing running in the background.
	for nextTick(clock.Now()).busy {
	}
	before := stats()
	if before.Good == 0 {
		t.Fatalf("no good nodes after bootstrap: %+v", before)
	}
	// Nothing is due yet: the tick finds no bucket to refresh and no node
	// to ping.
	if r := nextTick(clock.Now()); r.refresh != 0 || r.questionable != 0 {
		t.Fatalf("with nothing due a tick refreshed %d buckets and pinged %d nodes", r.refresh, r.questionable)
	}

	clock.Advance(routing.RefreshAfter + time.Minute)
	// Every node went questionable and every bucket is due; the pings and
	// refresh lookups that follow make the nodes good again.
	if r := nextTick(clock.Now()); r.refresh == 0 || r.questionable < before.Good {
		t.Fatalf("15 quiet minutes on, a tick refreshed %d buckets and pinged %d nodes, want some and %d", r.refresh, r.questionable, before.Good)
	}
	testutil.WaitFor(t, 10*time.Second, "questionable nodes to be pinged back to good", func() bool {
		s := stats()
		return s.Transport.QueriesOut > before.Transport.QueriesOut+uint64(before.Nodes) && s.Good >= before.Good
	})
}
