package krpc_test

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// newUs starts the Transport under attack on 127.0.0.1, closed when the
// test ends.
func newUs(t *testing.T, cfg krpc.Config) *krpc.Transport {
	t.Helper()
	return newTransportOn(t, "127.0.0.1", cfg)
}

func newNode(t *testing.T) *adversary.Node {
	t.Helper()
	n, err := adversary.NewNode("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

type result struct {
	m   *krpc.Msg
	err error
}

func goPing(ctx context.Context, tr *krpc.Transport, to netip.AddrPort) <-chan result {
	ch := make(chan result, 1)
	go func() {
		m, err := tr.Query(ctx, to, krpc.MethodPing, &krpc.Args{ID: routing.ID{1}})
		ch <- result{m, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("query did not return")
		return result{}
	}
}

// While we await a node's answer, replies from its IP
// but another port, or from its own address with the wrong transaction ID,
// pay the rate limit like any datagram, and enough of them block the IP;
// the genuine answer needs no token. On a frozen clock, so the bucket
// never refills.
func TestReplyFloodPaysRateLimit(t *testing.T) {
	const burst = 2
	clk := krpc.NewFakeClock()
	us := newUs(t, krpc.Config{RatePerIP: 1, BurstPerIP: burst, BlockFor: time.Minute, Now: clk.Now, Timeout: 10 * time.Second})
	queried, sidePort := newNode(t), newNode(t) // one IP, two ports
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ch := goPing(ctx, us, queried.Addr)
	q, from, err := queried.Recv(5 * time.Second)
	if err != nil || from != us.LocalAddr() {
		t.Fatalf("query %+v from %v: %v", q, from, err)
	}
	wrong := []byte(q.T)
	wrong[0] ^= 0xff
	// The right ID from the wrong port, and wrong IDs from the right
	// address (also the 2-byte IDs of the old scheme).
	if err := sidePort.ReplyFlood(us.LocalAddr(), 3, func(int) string { return q.T }); err != nil {
		t.Fatal(err)
	}
	if err := queried.ReplyFlood(us.LocalAddr(), 3, func(i int) string { return []string{string(wrong), "aa", q.T[:2]}[i] }); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "6 replies read", func() bool { s := us.Stats(); return s.RateLimited+s.Unmatched+s.ResponsesIn == 6 })
	if s := us.Stats(); s.RateLimited != 6-burst || s.Unmatched != burst || s.ResponsesIn != 0 {
		t.Fatalf("after 6 reply-looking datagrams (burst %d): RateLimited %d, Unmatched %d, ResponsesIn %d; want %d, %d, 0",
			burst, s.RateLimited, s.Unmatched, s.ResponsesIn, 6-burst, burst)
	}

	// The bucket is empty; the genuine answer gets through anyway.
	if err := queried.Reply(us.LocalAddr(), q.T, routing.ID{7}); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.err != nil || r.m.R.ID != (routing.ID{7}) {
		t.Fatalf("genuine answer: %+v, %v", r.m, r.err)
	}

	// A flood while a query is outstanding earns a block, as any flood.
	ch = goPing(ctx, us, queried.Addr)
	if q, _, err = queried.Recv(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	drops := us.Stats().RateLimited
	n := krpc.BlockFactor*burst - int(drops) + 3
	if err := sidePort.ReplyFlood(us.LocalAddr(), n, func(i int) string { return q.T }); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the flood read", func() bool { s := us.Stats(); return s.RateLimited+s.Blocked == drops+uint64(n) })
	if s := us.Stats(); s.BlockedIPs != 1 || s.Blocked != 3 || s.ResponsesIn != 1 || !us.IsBlocked(queried.Addr.Addr()) {
		t.Errorf("after %d more replies from the side port: %+v; want the IP blocked", n, s)
	}
	cancel()
	await(t, ch)
}

// Transaction IDs are random, not a counter (a counter lets anyone who
// saw one query forge the answers to the next): those of consecutive
// queries to one node are distinct, unrelated and spread over the whole
// space.
func TestTransactionIDsUnpredictable(t *testing.T) {
	us := newUs(t, krpc.Config{Timeout: 5 * time.Second})
	node := newNode(t)
	var (
		mu   sync.Mutex
		tids []string
	)
	node.Serve(func(q *krpc.Msg, _ netip.AddrPort) *krpc.Msg {
		mu.Lock()
		tids = append(tids, q.T)
		mu.Unlock()
		return &krpc.Msg{R: &krpc.Return{ID: routing.ID{2}}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 64
	for i := range n {
		if _, err := us.Query(ctx, node.Addr, krpc.MethodPing, &krpc.Args{ID: routing.ID{1}}); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tids) != n {
		t.Fatalf("%d IDs seen", len(tids))
	}
	ids := make([]uint32, n)
	for i, tid := range tids {
		if len(tid) != krpc.TxIDLen {
			t.Fatalf("transaction ID %x of %d bytes, want %d", tid, len(tid), krpc.TxIDLen)
		}
		for j := range len(tid) {
			ids[i] = ids[i]<<8 | uint32(tid[j])
		}
	}
	near := 0 // consecutive IDs within 2^16 of each other: 1 in 2^15 by chance
	for i := 1; i < n; i++ {
		if d := ids[i] - ids[i-1]; d < 1<<16 || -d < 1<<16 {
			near++
		}
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	distinct := len(slices.Compact(sorted))
	// 64 random IDs all within 2^28 of each other: odds about 2^-250.
	spread := sorted[n-1] - sorted[0]
	if near > 2 || distinct != n || spread < 1<<28 {
		t.Errorf("transaction IDs %x: %d consecutive pairs close, %d distinct, spread %#x", ids, near, distinct, spread)
	}
}

// A node that sees our query to itself cannot forge
// the answer to our next query to another node: replies from that node's
// address carrying the IDs a counter would give next are not taken as its
// answer.
func TestGuessedTransactionIDRejected(t *testing.T) {
	us := newUs(t, krpc.Config{Timeout: 10 * time.Second})
	attacker, victim := newNode(t), newNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ch := goPing(ctx, us, attacker.Addr)
	qa, _, err := attacker.Recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := attacker.Reply(us.LocalAddr(), qa.T, routing.ID{0xa}); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.err != nil {
		t.Fatal(r.err)
	}

	ch = goPing(ctx, us, victim.Addr)
	qv, _, err := victim.Recv(5 * time.Second) // the victim's; the attacker never sees it
	if err != nil {
		t.Fatal(err)
	}
	// The attacker's guesses, sent from the victim's address as a spoofer
	// would.
	const guesses = 16
	forged := adversary.NextTxIDs(qa.T, guesses)
	if err := victim.ReplyFlood(us.LocalAddr(), guesses, func(i int) string { return forged[i] }); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the forgeries read", func() bool { s := us.Stats(); return s.Unmatched+s.ResponsesIn == 1+guesses })
	if err := victim.Reply(us.LocalAddr(), qv.T, routing.ID{0xb}); err != nil {
		t.Fatal(err)
	}
	r := await(t, ch)
	if r.err != nil || r.m.R.ID != (routing.ID{0xb}) {
		t.Fatalf("query to the victim (t %x after %x) = %+v, %v; want the victim's own answer, not a forgery", qv.T, qa.T, r.m, r.err)
	}
	// The transport counts an answer after handing it to its query, so
	// the count may trail the answer a little.
	testutil.WaitFor(t, 5*time.Second, "the victim's answer counted", func() bool { return us.Stats().ResponsesIn >= 2 })
	if s := us.Stats(); s.Unmatched != guesses || s.ResponsesIn != 2 {
		t.Errorf("stats %+v", s)
	}
}

// A datagram let through as the reply we await, that then fails to parse,
// pays its token after all, and only the first is let through so: the
// node we query cannot send garbage under our transaction ID, unlimited,
// until the query ends.
func TestMalformedReplyPaysLate(t *testing.T) {
	const burst = 2
	clk := krpc.NewFakeClock()
	us := newUs(t, krpc.Config{RatePerIP: 1, BurstPerIP: burst, BlockFor: time.Minute, Now: clk.Now, Timeout: 10 * time.Second})
	queried := newNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := goPing(ctx, us, queried.Addr)
	q, _, err := queried.Recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("d1:t" + strconv.Itoa(len(q.T)) + ":" + q.T + "1:y1:re") // a response without r
	n := burst + krpc.BlockFactor*burst + 1                                // the burst, the drops that block, one blocked
	for range n {
		if err := queried.SendRaw(us.LocalAddr(), bad); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "the garbage read", func() bool { s := us.Stats(); return s.Malformed+s.RateLimited+s.Blocked == uint64(n) })
	if s := us.Stats(); s.Malformed != burst || s.BlockedIPs != 1 || s.Blocked != 1 {
		t.Errorf("after %d malformed replies under our transaction ID: %+v; want the IP blocked", n, s)
	}
	cancel()
	await(t, ch)
}
