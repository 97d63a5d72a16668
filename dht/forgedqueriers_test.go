package dht

import (
	"context"
	"testing"
	"time"

	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// Queriers whose source addresses are forged (here: sockets that query us
// and are gone before our check reaches them) never enter the node cache:
// unasked, anyone can put thousands of made-up nodes, with IDs BEP 42
// makes valid for the forged addresses and chosen next to the targets
// they want to slow, where our lookups start, and by filling a quarter of
// the cache turn off its fill and the find_node checks of queriers.
func TestForgedQueriersStayOutOfCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := testRand()
	n := startNode(t, 127, 1, func(c *Config) { c.QueryTimeout = 50 * time.Millisecond })
	const forged = 20
	for i := range forged {
		tr, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 128, i+1)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.Query(ctx, n.Addr(), krpc.MethodPing, &krpc.Args{ID: routing.RandomID(r)})
		tr.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every check of them has timed out.
	testutil.WaitFor(t, 5*time.Second, "the checks to time out", func() bool {
		st, err := n.Stats(ctx)
		tr := st.Transport
		return err == nil && tr.QueriesOut > 0 && tr.QueriesOut == tr.Timeouts+tr.ResponsesIn+tr.ErrorsIn+tr.SendErrors
	})
	if got := n.cache.len(); got != 0 {
		t.Fatalf("%d of %d forged queriers, none of which ever answered, in the node cache", got, forged)
	}
}
