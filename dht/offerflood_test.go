package dht

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// A flood of offers (port messages from peers) naming nodes that never
// answer holds at most maxOfferPings of the maxPings ping slots, for a
// whole query timeout each: a node that queries us meanwhile is still
// pinged at once to be verified for the table.
func TestOfferFloodLeavesTablePings(t *testing.T) {
	n, err := New(Config{Conn: listenLoopback(t, 163, 1), QueryTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent := func() uint64 {
		s, err := n.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Transport.QueriesOut
	}
	for i := range 2 * maxPings {
		n.OfferNode(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 164, 0, byte(i + 1)}), 6881))
	}
	testutil.WaitFor(t, 5*time.Second, "the offer pings", func() bool { return sent() >= maxOfferPings })
	if got := sent(); got != maxOfferPings {
		t.Fatalf("%d offers of silent nodes sent %d pings, bound %d", 2*maxPings, got, maxOfferPings)
	}

	q, err := adversary.NewNode("127.0.163.2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Query(n.Addr(), "qq", krpc.MethodPing, &krpc.Args{ID: routing.ID{0x63}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		m, _, err := q.Recv(time.Until(deadline))
		if err != nil {
			t.Fatalf("the querier was not pinged while offers held their slots: %v", err)
		}
		// Its check: a ping, or a find_node while the node cache is thin.
		if m.Y == krpc.KindQuery && (m.Q == krpc.MethodPing || m.Q == krpc.MethodFindNode) {
			break
		}
	}
}

// The memory of offers is keyed by source: the addresses of one IPv6 /64
// are one, pinged once a minute.
func TestOfferMemoryPerV6Net64(t *testing.T) {
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	n, err := New(Config{Conn: pc})
	if err != nil {
		t.Fatal(err)
	}
	// Closed, the loop is gone and its state is the test's; pings are
	// refused, so nothing is sent.
	n.Close()
	now := time.Now()
	for i := range 100 {
		n.offered(netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4, 15: byte(i + 1)}), 6881), now)
	}
	n.offered(netip.MustParseAddrPort("[2001:db8:1:2:3:5::1]:6881"), now)
	if got := n.offers.recent.Len(); got != 2 {
		t.Fatalf("100 offers from one /64 and one from another: %d sources remembered, want 2", got)
	}
}
