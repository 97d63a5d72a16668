package dht

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// Queriers, whose source addresses anyone can forge, spend no more of the
// ping budget than leaves pingReserve for the pings that keep the table
// live (its questionable nodes) and check offered nodes: a few forged
// queries a second into a bucket with room would otherwise take every
// ping pingRate allows, and the table's dead nodes would never be found
// out.
func TestQueriersLeavePingReserve(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := newFakeClock()
	n := startNode(t, 129, 1, func(c *Config) {
		c.Now = clock.Now
		c.QueryTimeout = time.Millisecond // each check fails at once, freeing its slot
	})
	r := testRand()
	for i := range 2 * pingBurst {
		tr, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 130, 1+i%200), Handler: func(netip.AddrPort, *krpc.Msg) *krpc.Msg { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		if _, err := tr.Query(ctx, n.Addr(), krpc.MethodFindNode, &krpc.Args{ID: routing.RandomID(r), Target: &routing.ID{}}); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, "the checks to time out", func() bool {
			st, err := n.Stats(ctx)
			tr := st.Transport
			return err == nil && tr.QueriesOut == tr.Timeouts+tr.ResponsesIn+tr.ErrorsIn+tr.SendErrors
		})
	}
	if got := n.pingLimit.TokensAt(clock.Now()); got < pingReserve {
		t.Fatalf("after %d queriers, %.0f pings left for the table, want pingReserve = %d", 2*pingBurst, got, pingReserve)
	}
}

// Nor do queriers that never answer hold more than maxPings-pingReserve
// of the pings in flight: each holds its place for the query timeout.
func TestQueriersLeavePingSlots(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := startNode(t, 131, 1, func(c *Config) { c.QueryTimeout = time.Minute })
	r := testRand()
	for i := range 2 * maxPings {
		tr, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 132, 1+i), Handler: func(netip.AddrPort, *krpc.Msg) *krpc.Msg { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		if _, err := tr.Query(ctx, n.Addr(), krpc.MethodFindNode, &krpc.Args{ID: routing.RandomID(r), Target: &routing.ID{}}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := n.Stats(ctx) // queued behind every queriedEvent
	if err != nil {
		t.Fatal(err)
	}
	if out := st.Transport.QueriesOut; out > maxPings-pingReserve {
		t.Fatalf("%d checks of queriers in flight, want at most maxPings-pingReserve = %d", out, maxPings-pingReserve)
	}
}

// Offers of nodes (BEP 5 port messages from peers, which a swarm of
// hostile peers sends at will) leave pingReserve just the same.
func TestOffersLeavePingReserve(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := newFakeClock()
	n := startNode(t, 135, 1, func(c *Config) {
		c.Now = clock.Now
		c.QueryTimeout = time.Millisecond
	})
	for i := range 2 * pingBurst {
		tr, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 136, 1+i), Handler: func(netip.AddrPort, *krpc.Msg) *krpc.Msg { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		n.OfferNode(tr.LocalAddr())
		testutil.WaitFor(t, 5*time.Second, "the offer's ping to end", func() bool {
			st, err := n.Stats(ctx)
			tr := st.Transport
			return err == nil && tr.QueriesOut == tr.Timeouts+tr.ResponsesIn+tr.ErrorsIn+tr.SendErrors
		})
	}
	if got := n.pingLimit.TokensAt(clock.Now()); got < pingReserve {
		t.Fatalf("after %d offers, %.0f pings left for the table, want pingReserve = %d", 2*pingBurst, got, pingReserve)
	}
}
