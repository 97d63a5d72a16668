package dht

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// Under an amplification bound a get_peers answer with many stored peers
// stays within the allowance: values alone, at most maxBoundedValues; a
// scrape gets its filters alone. Without the bound nothing is trimmed.
func TestAnswersStaySmallUnderAmplificationBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, bound := range []int{0, 4} {
		n, err := New(Config{Conn: listenLoopback(t, 24, 1+bound), MaxAmplification: bound})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		ih := routing.RandomID(testRand())
		for i := 0; i < 60; i++ {
			n.store.add(ih, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), 6881), time.Now())
		}
		cl, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 24, 10+bound)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		// Give the node a table, so that nodes could be sent.
		if _, err := cl.Query(ctx, n.Addr(), krpc.MethodPing, &krpc.Args{ID: routing.RandomID(testRand())}); err != nil {
			t.Fatal(err)
		}
		r, err := cl.Query(ctx, n.Addr(), krpc.MethodGetPeers, &krpc.Args{ID: routing.ID{1}, InfoHash: &ih})
		if err != nil {
			t.Fatalf("bound %d: %v", bound, err)
		}
		size, _ := r.Append(nil)
		switch {
		case bound == 0 && len(r.R.Values) != DefaultMaxValues:
			t.Fatalf("unbounded: %d values, want %d", len(r.R.Values), DefaultMaxValues)
		case bound > 0 && (len(r.R.Values) != maxBoundedValues || len(r.R.Nodes) != 0 || len(size) > krpc.AmplificationAllowance):
			t.Fatalf("bounded: %d values, %d nodes, %d bytes", len(r.R.Values), len(r.R.Nodes), len(size))
		}
		r, err = cl.Query(ctx, n.Addr(), krpc.MethodGetPeers, &krpc.Args{ID: routing.ID{1}, InfoHash: &ih, Scrape: 1})
		if err != nil {
			t.Fatalf("bound %d, scrape: %v", bound, err)
		}
		if r.R.BFpe == nil || (bound > 0 && len(r.R.Values) != 0) {
			t.Fatalf("bound %d, scrape: filters %v, %d values", bound, r.R.BFpe != nil, len(r.R.Values))
		}
	}
}
