package krpc_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// A node we query sends queries dressed as its reply to us (under our
// transaction ID, y read twice): the head reads a reply, the decoder a
// query. Each pays the rate limit before it is answered, like any query,
// and the flood blocks the node. On a frozen clock, so the bucket never
// refills.
func TestDisguisedQueryPaysRateLimit(t *testing.T) {
	const burst = 2
	clk := krpc.NewFakeClock()
	us := newUs(t, krpc.Config{RatePerIP: 1, BurstPerIP: burst, BlockFor: time.Minute, Now: clk.Now, Timeout: 10 * time.Second,
		Handler: func(netip.AddrPort, *krpc.Msg) *krpc.Msg { return &krpc.Msg{R: &krpc.Return{ID: routing.ID{9}}} }})
	queried := newNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := goPing(ctx, us, queried.Addr)
	q, _, err := queried.Recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pkt := adversary.DisguisedQuery(q.T, routing.ID{0xd})
	if m, err := krpc.Parse(pkt); err != nil || m.Y != krpc.KindQuery {
		t.Fatalf("the disguised query parses as %+v, %v; want a query", m, err)
	}
	const n = 50
	for range n {
		if err := queried.SendRaw(us.LocalAddr(), pkt); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "the flood read", func() bool { s := us.Stats(); return s.QueriesIn+s.RateLimited+s.Blocked == n })
	if s := us.Stats(); s.QueriesIn != burst || !us.IsBlocked(queried.Addr.Addr()) {
		t.Errorf("after %d disguised queries on a frozen clock, burst %d: %d answered (stats %+v); want %d and the IP blocked",
			n, burst, s.QueriesIn, s, burst)
	}
	cancel()
	await(t, ch)
}

// A flood from a node's IP (another port of it, as a spoofer would send)
// gets the IP blocked. The node's genuine answer to our query still
// arrives: it carries our random transaction ID from exactly the address
// we asked, which a blind spoofer cannot forge. Only one datagram per
// transaction passes so: a second copy is dropped as blocked.
func TestSpoofedFloodSparesGenuineReply(t *testing.T) {
	const burst = 2
	clk := krpc.NewFakeClock()
	us := newUs(t, krpc.Config{RatePerIP: 1, BurstPerIP: burst, BlockFor: time.Minute, Now: clk.Now, Timeout: 5 * time.Second})
	victim, spoof := newNode(t), newNode(t) // one IP, two ports
	junk := []byte("d1:ad2:id20:abcdefghijklmnopqrste1:q4:ping1:t2:aa1:y1:qe")
	for range burst + krpc.BlockFactor*burst + 1 {
		if err := spoof.SendRaw(us.LocalAddr(), junk); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "the IP blocked", func() bool { return us.IsBlocked(victim.Addr.Addr()) })
	testutil.WaitFor(t, 5*time.Second, "the flood read", func() bool { return us.Stats().Blocked == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := goPing(ctx, us, victim.Addr)
	q, _, err := victim.Recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := victim.Reply(us.LocalAddr(), q.T, routing.ID{7}); err != nil {
			t.Fatal(err)
		}
	}
	if r := await(t, ch); r.err != nil || r.m.R.ID != (routing.ID{7}) {
		t.Fatalf("genuine answer of a node blocked by a spoofed flood: %+v, %v (stats %+v)", r.m, r.err, us.Stats())
	}
	testutil.WaitFor(t, 5*time.Second, "the second copy dropped", func() bool { return us.Stats().Blocked == 2 })
	if s := us.Stats(); s.ResponsesIn != 1 || s.Unmatched != 0 {
		t.Errorf("stats %+v; want one response in and the copy blocked", s)
	}
}
