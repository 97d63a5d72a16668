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

// A node that queries us while our node cache is thin is checked with a
// find_node (see verify); its answer, however many nodes it names (some
// 150 fit a datagram krpc takes), puts no more than maxAnswerNodes of them in
// the cache, as a lookup's answer does: a stranger that merely queries
// us would otherwise replace the whole cache with made-up nodes, valid
// under BEP 42 for addresses where nobody answers, with one datagram.
func TestCheckAnswerFloodBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := testRand()
	n := startNode(t, 133, 1, nil)
	var named []routing.Contact
	for i := range 150 { // as many as fit krpc.DefaultMaxPacket
		named = append(named, routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 6881)})
	}
	id := routing.RandomID(r)
	answered := make(chan struct{}, 1)
	tr, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 134, 1), Handler: func(_ netip.AddrPort, q *krpc.Msg) *krpc.Msg {
		select {
		case answered <- struct{}{}:
		default:
		}
		return &krpc.Msg{R: &krpc.Return{ID: id, Nodes: named}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	if _, err := tr.Query(ctx, n.Addr(), krpc.MethodPing, &krpc.Args{ID: id}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	case <-ctx.Done():
		t.Fatal("never checked")
	}
	testutil.WaitFor(t, 5*time.Second, "the check to end", func() bool {
		st, err := n.Stats(ctx)
		tr := st.Transport
		return err == nil && tr.QueriesOut == tr.Timeouts+tr.ResponsesIn+tr.ErrorsIn+tr.SendErrors && n.cache.len() > 0
	})
	if got := n.cache.len(); got > maxAnswerNodes+1 {
		t.Fatalf("one answer put %d nodes in the cache, bound maxAnswerNodes+1 (the querier) = %d", got, maxAnswerNodes+1)
	}
}
