package dht

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/internal/testutil"
)

// Offers (BEP 5 port messages) are pinged through the bounded path: one
// IP is pinged once however many ports it offers, and a flood of IPs gets
// at most maxOfferPings pings in flight and maxOffers waiting; the rest
// are dropped, not queued without end.
func TestOfferNodeBounds(t *testing.T) {
	// Each ping waits out its timeout, maxOfferPings of them at a time:
	// the timeout is most of the test's time. It only has to outlast the
	// posting of the offers below, which takes about 1 ms under -race.
	const timeout = 250 * time.Millisecond
	n, err := New(Config{Conn: listenLoopback(t, 160, 1), QueryTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	transport := func() (sent, timedOut uint64) {
		s, err := n.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Transport.QueriesOut, s.Transport.Timeouts
	}
	// Nothing listens on these addresses: every ping times out.
	one := netip.MustParseAddr("127.0.160.2")
	for i := range 1000 {
		n.OfferNode(netip.AddrPortFrom(one, uint16(10000+i)))
	}
	testutil.WaitFor(t, 5*time.Second, "the ping of the one IP to time out", func() bool { _, to := transport(); return to >= 1 })
	if sent, _ := transport(); sent != 1 {
		t.Fatalf("1000 offers from one IP sent %d pings, want 1", sent)
	}

	const offers = 300
	start := time.Now()
	for i := range offers {
		n.OfferNode(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 161, byte(i / 200), byte(i%200 + 1)}), 6881))
		if i%50 == 49 {
			transport() // the loop has taken every offer so far: none dropped for a full channel
		}
	}
	posted := time.Since(start)
	testutil.WaitFor(t, 5*time.Second, "the first pings", func() bool { sent, _ := transport(); return sent >= 1+maxOfferPings })
	if sent, to := transport(); sent-to > maxOfferPings {
		t.Fatalf("%d offer pings in flight, bound is %d", sent-to, maxOfferPings)
	}
	want := uint64(1 + maxOfferPings + maxOffers)
	testutil.WaitFor(t, 15*time.Second, "every ping to time out", func() bool { sent, to := transport(); return sent == to && sent >= want })
	sent, _ := transport()
	if posted >= timeout {
		// A slot freed before the last offer came: more may rightly pass.
		t.Skipf("posting %d offers took %v, longer than a ping's timeout", offers, posted)
	}
	if sent != want {
		t.Fatalf("%d offers from distinct IPs sent %d pings, want maxOfferPings+maxOffers = %d", offers, sent-1, want-1)
	}
}

// The IPs remembered against repeated offers are bounded by offerMemory,
// however many are offered.
func TestOfferMemoryBound(t *testing.T) {
	n, err := New(Config{Conn: listenLoopback(t, 160, 3)})
	if err != nil {
		t.Fatal(err)
	}
	// Closed, the loop is gone and its state is the test's; pings are
	// refused, so every offer reaches the memory.
	n.Close()
	now := time.Now()
	for i := range 4 * offerMemory {
		n.offered(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 162, byte(i >> 8), byte(i)}), 6881), now)
	}
	if got := n.offers.recent.Len(); got != offerMemory {
		t.Fatalf("%d IPs remembered of %d offered; want the bound, %d", got, 4*offerMemory, offerMemory)
	}
	if len(n.offers.queue) > maxOffers {
		t.Fatalf("%d offers queued, bound is %d", len(n.offers.queue), maxOffers)
	}
}
