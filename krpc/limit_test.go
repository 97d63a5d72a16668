package krpc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/testutil"
)

// fakeClock is a Config.Now that moves only when told to.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(1_700_000_000, 0).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func testLimiter(t *testing.T, cfg Config) *limiter {
	t.Helper()
	applyLimitDefaults(&cfg)
	l := newLimiter(&cfg)
	if l == nil {
		t.Fatal("no limiter")
	}
	return l
}

var ip1 = netip.MustParseAddr("192.0.2.1")

func TestLimiterDefaults(t *testing.T) {
	var cfg Config
	applyLimitDefaults(&cfg)
	if newLimiter(&cfg) != nil {
		t.Error("zero RatePerIP built a limiter")
	}
	if cfg.SendBurst != 0 || cfg.BlockFor != DefaultBlockFor || cfg.MaxTrackedIPs != DefaultMaxTrackedIPs || cfg.MaxBlockedIPs != DefaultMaxBlockedIPs {
		t.Errorf("defaults %+v", cfg)
	}
	cfg = Config{RatePerIP: DefaultRatePerIP, SendRate: DefaultSendRate}
	applyLimitDefaults(&cfg)
	if cfg.BurstPerIP != DefaultBurstPerIP || cfg.SendBurst != DefaultSendBurst {
		t.Errorf("derived bursts %d, %d; want %d, %d", cfg.BurstPerIP, cfg.SendBurst, DefaultBurstPerIP, DefaultSendBurst)
	}
	cfg = Config{RatePerIP: 0.1, SendRate: 0.5}
	applyLimitDefaults(&cfg)
	if cfg.BurstPerIP != 1 || cfg.SendBurst != 1 {
		t.Errorf("tiny rates: bursts %d, %d; want 1, 1", cfg.BurstPerIP, cfg.SendBurst)
	}
}

// A source gets its burst, then its rate; BlockFactor × burst drops within
// BlockWindow block it for BlockFor, after which it starts afresh.
func TestLimiterRateAndBlock(t *testing.T) {
	clk := newFakeClock()
	l := testLimiter(t, Config{RatePerIP: 20, BurstPerIP: 40, BlockFor: time.Minute})
	now := clk.Now()
	for i := range 40 {
		if v := l.admit(ip1, now); v != admitted {
			t.Fatalf("packet %d of the burst: verdict %d", i, v)
		}
	}
	if v := l.admit(ip1, now); v != rateLimited {
		t.Fatalf("packet 41: verdict %d, want rateLimited", v)
	}
	now = now.Add(50 * time.Millisecond) // one token at 20/s
	if v := l.admit(ip1, now); v != admitted {
		t.Fatalf("after 50ms: verdict %d, want admitted", v)
	}
	// Another source is unaffected.
	if v := l.admit(netip.MustParseAddr("192.0.2.2"), now); v != admitted {
		t.Fatalf("other source: verdict %d", v)
	}
	// 1 drop so far; 119 more make 3 × 40.
	for i := range 118 {
		if v := l.admit(ip1, now); v != rateLimited {
			t.Fatalf("drop %d: verdict %d", i, v)
		}
	}
	if l.isBlocked(ip1, now) {
		t.Fatal("blocked after 119 drops")
	}
	if v := l.admit(ip1, now); v != rateLimited {
		t.Fatalf("drop 120: verdict %d", v)
	}
	if !l.isBlocked(ip1, now) || l.blockedCount(now) != 1 {
		t.Fatal("not blocked after 120 drops")
	}
	if v := l.admit(ip1, now.Add(59*time.Second)); v != blocked {
		t.Fatalf("during block: verdict %d, want blocked", v)
	}
	now = now.Add(time.Minute)
	if l.isBlocked(ip1, now) || l.blockedCount(now) != 0 {
		t.Fatal("still blocked after BlockFor")
	}
	for i := range 40 {
		if v := l.admit(ip1, now); v != admitted {
			t.Fatalf("after the block, packet %d: verdict %d (bucket not fresh)", i, v)
		}
	}
}

// Drops count within a window from the first drop: a source slightly over
// its rate is throttled but never blocked; one far over it is.
func TestLimiterBlockRule(t *testing.T) {
	for _, tc := range []struct {
		pps       int
		wantBlock bool
	}{
		{25, false}, // 5 drops/s: 50 per window
		{30, false}, // 10 drops/s: 100 per window
		{40, true},  // 20 drops/s: 120 within 6 s (plus the burst's head start)
		{1000, true},
	} {
		t.Run(fmt.Sprint(tc.pps), func(t *testing.T) {
			clk := newFakeClock()
			l := testLimiter(t, Config{RatePerIP: 20, BurstPerIP: 40})
			step := time.Second / time.Duration(tc.pps)
			var admittedN, limited int
			gotBlock := false
			for range 60 * tc.pps { // one minute
				clk.Advance(step)
				switch l.admit(ip1, clk.Now()) {
				case admitted:
					admittedN++
				case rateLimited:
					limited++
				case blocked:
					gotBlock = true
				}
			}
			if gotBlock != tc.wantBlock {
				t.Errorf("%d pps for 60 s: blocked %v, want %v (admitted %d, limited %d)", tc.pps, gotBlock, tc.wantBlock, admittedN, limited)
			}
			if !tc.wantBlock && (admittedN < 60*20 || admittedN > 60*20+40+1) {
				t.Errorf("%d pps: admitted %d in 60 s, want the rate (1200) plus at most the burst", tc.pps, admittedN)
			}
		})
	}
}

func TestLimiterNegativeBlockForNeverBlocks(t *testing.T) {
	clk := newFakeClock()
	l := testLimiter(t, Config{RatePerIP: 1, BurstPerIP: 1, BlockFor: -1})
	for range 10_000 {
		if l.admit(ip1, clk.Now()) == blocked {
			t.Fatal("blocked with BlockFor < 0")
		}
	}
}

// Both tables stay within their bounds however many sources send.
func TestLimiterBounded(t *testing.T) {
	clk := newFakeClock()
	l := testLimiter(t, Config{RatePerIP: 1, BurstPerIP: 1, MaxTrackedIPs: 100, MaxBlockedIPs: 10})
	for i := range 5000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		for range 5 { // 1 admitted, 3 drops block, 1 blocked
			l.admit(ip, clk.Now())
		}
		if !l.isBlocked(ip, clk.Now()) {
			t.Fatalf("source %d not blocked", i)
		}
	}
	if n := l.ips.Len(); n > 100 {
		t.Errorf("%d sources tracked, bound 100", n)
	}
	if n := l.blocked.Len(); n != 10 {
		t.Errorf("%d sources blocked, want the bound 10", n)
	}
}

// IPv6 sources are tracked by /64; IPv4 ones by address.
func TestLimiterIPv6Prefix(t *testing.T) {
	clk := newFakeClock()
	l := testLimiter(t, Config{RatePerIP: 1, BurstPerIP: 2})
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	c := netip.MustParseAddr("2001:db8:1:3::1")
	now := clk.Now()
	if l.admit(a, now) != admitted || l.admit(b, now) != admitted {
		t.Fatal("first two from the /64 refused")
	}
	if l.admit(a, now) != rateLimited {
		t.Error("third packet from the same /64 admitted")
	}
	if l.admit(c, now) != admitted {
		t.Error("another /64 refused")
	}
}

// The steady-state check of a known source, with the walk that comes
// before it, does not allocate.
func TestLimiterAdmitDoesNotAllocate(t *testing.T) {
	clk := newFakeClock()
	l := testLimiter(t, Config{RatePerIP: 1e9, BurstPerIP: 1e9})
	ping := []byte("d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:qe")
	l.admit(ip1, clk.Now())
	allocs := testing.AllocsPerRun(1000, func() {
		if h := scanHead(ping); h.isReply() || l.admit(ip1, clk.Now()) != admitted {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("admit allocates %v times per packet", allocs)
	}
}

func pingBytes(t *testing.T, tid string) []byte {
	return encode(t, &Msg{T: tid, Y: KindQuery, Q: MethodPing, A: &Args{ID: idA}})
}

// End to end on a frozen clock: the burst is answered, the rest dropped
// unparsed, abuse blocks the source, and the block expires.
func TestTransportRateLimitAndBlock(t *testing.T) {
	clk := newFakeClock()
	b := newTransport(t, Config{
		RatePerIP: 1, BurstPerIP: 2, BlockFor: time.Minute, Now: clk.Now,
		Handler: func(netip.AddrPort, *Msg) *Msg { return &Msg{R: &Return{ID: idB}} },
	})
	raw := listen(t)
	for i := range 3 {
		send(t, raw, b.LocalAddr(), pingBytes(t, fmt.Sprintf("p%d", i)))
	}
	for i := range 2 {
		if m, _ := readMsg(t, raw, 2*time.Second); m.T != fmt.Sprintf("p%d", i) {
			t.Fatalf("answer %d: %+v", i, m)
		}
	}
	expectSilence(t, raw, 100*time.Millisecond)
	testutil.WaitFor(t, 2*time.Second, "RateLimited", func() bool { return b.Stats().RateLimited == 1 })
	if s := b.Stats(); s.QueriesIn != 2 || s.Malformed != 0 || s.BlockedIPs != 0 {
		t.Errorf("stats %+v", s)
	}

	// 5 more drops (6 = 3 × burst) block the source; garbage counts too.
	for range 5 {
		send(t, raw, b.LocalAddr(), []byte("garbage"))
	}
	for range 4 {
		send(t, raw, b.LocalAddr(), pingBytes(t, "xx"))
	}
	testutil.WaitFor(t, 2*time.Second, "blocked", func() bool { s := b.Stats(); return s.RateLimited == 6 && s.Blocked == 4 })
	if s := b.Stats(); s.BlockedIPs != 1 || s.Malformed != 0 || s.QueriesIn != 2 {
		t.Errorf("stats %+v", s)
	}
	if !b.IsBlocked(addrOf(raw).Addr()) || b.IsBlocked(netip.MustParseAddr("127.0.0.2")) {
		t.Error("IsBlocked wrong")
	}
	expectSilence(t, raw, 50*time.Millisecond)

	clk.Advance(time.Minute)
	send(t, raw, b.LocalAddr(), pingBytes(t, "ok"))
	if m, _ := readMsg(t, raw, 2*time.Second); m.T != "ok" {
		t.Fatalf("after the block: %+v", m)
	}
	if s := b.Stats(); s.BlockedIPs != 0 || s.Blocked != 4 {
		t.Errorf("stats after block %+v", s)
	}
}

// Replies to our own queries skip our rate limit; stray replies do not.
func TestRepliesExemptFromRateLimit(t *testing.T) {
	clk := newFakeClock()
	b := newTransport(t, Config{Handler: func(netip.AddrPort, *Msg) *Msg { return &Msg{R: &Return{ID: idB}} }})
	a := newTransport(t, Config{RatePerIP: 1, BurstPerIP: 1, Timeout: 5 * time.Second, Now: clk.Now})
	ctx := testCtx(t, 10*time.Second)
	for i := range 20 {
		if _, err := a.Query(ctx, b.LocalAddr(), MethodPing, &Args{ID: idA}); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	// ResponsesIn is bumped just after the hand-off.
	testutil.WaitFor(t, 2*time.Second, "ResponsesIn", func() bool { return a.Stats().ResponsesIn == 20 })
	if s := a.Stats(); s.RateLimited != 0 {
		t.Errorf("stats %+v", s)
	}
	raw := listen(t)
	stray := encode(t, &Msg{T: "zz", Y: KindResponse, R: &Return{ID: idB}})
	for range 3 {
		send(t, raw, a.LocalAddr(), stray)
	}
	testutil.WaitFor(t, 2*time.Second, "stray replies", func() bool { s := a.Stats(); return s.Unmatched == 1 && s.RateLimited == 2 })
}

// responseOfSize is an answer that encodes (with t "aa" and version v) to
// exactly n bytes, padded through its token.
func responseOfSize(t *testing.T, n int, v string) *Msg {
	t.Helper()
	for l := 0; l < n; l++ {
		m := &Msg{T: "aa", Y: KindResponse, V: v, R: &Return{ID: idB, Token: strings.Repeat("k", l)}}
		if len(encode(t, m)) == n {
			return &Msg{R: &Return{ID: idB, Token: m.R.Token}}
		}
	}
	t.Fatalf("no response of %d bytes", n)
	return nil
}

// Answers over max(MaxAmplification × query, AmplificationAllowance) bytes
// are dropped and counted.
func TestAmplificationBound(t *testing.T) {
	var next atomic.Pointer[Msg]
	b := newTransport(t, Config{MaxAmplification: 4, Version: "KB01", Handler: func(netip.AddrPort, *Msg) *Msg {
		return next.Load()
	}})
	raw := listen(t)
	q := pingBytes(t, "aa") // a small ping: the allowance rules
	if 4*len(q) >= AmplificationAllowance {
		t.Fatalf("ping of %d bytes", len(q))
	}

	next.Store(responseOfSize(t, AmplificationAllowance, "KB01"))
	send(t, raw, b.LocalAddr(), q)
	if m, _ := readMsg(t, raw, 2*time.Second); m.R == nil {
		t.Fatalf("answer of exactly the allowance: %+v", m)
	}
	next.Store(responseOfSize(t, AmplificationAllowance+1, "KB01"))
	send(t, raw, b.LocalAddr(), q)
	expectSilence(t, raw, 100*time.Millisecond)
	testutil.WaitFor(t, 2*time.Second, "Amplification", func() bool { return b.Stats().Amplification == 1 })

	// A big query earns a big answer: up to 4 × its size.
	big := []byte("d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:z200:" + strings.Repeat("x", 200) + "e")
	next.Store(responseOfSize(t, 4*len(big), "KB01"))
	send(t, raw, b.LocalAddr(), big)
	if m, _ := readMsg(t, raw, 2*time.Second); m.R == nil {
		t.Fatalf("answer of 4 × %d bytes: %+v", len(big), m)
	}
	next.Store(responseOfSize(t, 4*len(big)+1, "KB01"))
	send(t, raw, b.LocalAddr(), big)
	expectSilence(t, raw, 100*time.Millisecond)
	testutil.WaitFor(t, 2*time.Second, "Amplification", func() bool { return b.Stats().Amplification == 2 })
	if s := b.Stats(); s.QueriesIn != 4 || s.PacketsOut != 2 || s.SendDropped != 0 {
		t.Errorf("stats %+v", s)
	}

	// With MaxAmplification 0 there is no bound.
	u := newTransport(t, Config{Handler: func(netip.AddrPort, *Msg) *Msg { return next.Load() }})
	next.Store(responseOfSize(t, 2000, ""))
	send(t, raw, u.LocalAddr(), q)
	if m, _ := readMsg(t, raw, 2*time.Second); m.R == nil {
		t.Fatalf("unbounded answer: %+v", m)
	}
}

// The allowance holds the answers it is documented to hold.
func TestAmplificationAllowanceFitsEightNodes(t *testing.T) {
	for _, n := range []NodeInfo{node4, node6} {
		from := netip.MustParseAddrPort("[2001:db8::99]:51413")
		r := &Return{ID: idB, Token: strings.Repeat("t", 20)}
		for i := range 8 {
			ni := n
			ni.ID[0] = byte(i)
			if n.Addr.Addr().Is4() {
				r.Nodes = append(r.Nodes, ni)
			} else {
				r.Nodes6 = append(r.Nodes6, ni)
			}
		}
		m := Msg{T: strings.Repeat("T", MaxTransactionIDLen), Y: KindResponse, R: r, V: "KR01", IP: (*Addr)(&from)}
		size := len(encode(t, &m))
		t.Logf("get_peers answer, 8 nodes like %v: %d bytes", n.Addr, size)
		if size > AmplificationAllowance {
			t.Errorf("8-node answer of %d bytes exceeds the allowance %d", size, AmplificationAllowance)
		}
	}
}

// Answers over the send budget are dropped and counted; our own queries
// wait for a token instead, within their context.
func TestSendBudget(t *testing.T) {
	clk := newFakeClock()
	b := newTransport(t, Config{SendRate: 1, SendBurst: 2, Now: clk.Now, Handler: func(netip.AddrPort, *Msg) *Msg {
		return &Msg{R: &Return{ID: idB}}
	}})
	raw := listen(t)
	for i := range 3 {
		send(t, raw, b.LocalAddr(), pingBytes(t, fmt.Sprintf("p%d", i)))
	}
	readMsg(t, raw, 2*time.Second)
	readMsg(t, raw, 2*time.Second)
	expectSilence(t, raw, 100*time.Millisecond)
	testutil.WaitFor(t, 2*time.Second, "SendDropped", func() bool { return b.Stats().SendDropped == 1 })
	clk.Advance(time.Second)
	send(t, raw, b.LocalAddr(), pingBytes(t, "p3"))
	if m, _ := readMsg(t, raw, 2*time.Second); m.T != "p3" {
		t.Fatalf("after refill: %+v", m)
	}

	// Queries: 10/s with a burst of 1, on the real clock.
	silent := listen(t)
	a := newTransport(t, Config{SendRate: 10, SendBurst: 1, Timeout: 20 * time.Millisecond})
	ctx := testCtx(t, 5*time.Second)
	start := time.Now()
	for range 4 {
		if _, err := a.Query(ctx, addrOf(silent), MethodPing, &Args{ID: idA}); !errors.Is(err, ErrTimeout) {
			t.Fatalf("Query = %v, want ErrTimeout", err)
		}
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("4 queries at 10/s took %v, want >= 300ms", el)
	}
	if s := a.Stats(); s.QueriesOut != 4 || s.SendDropped != 0 {
		t.Errorf("querier stats %+v", s)
	}

	// A query whose context cannot last until its token gives up at once.
	slow := newTransport(t, Config{SendRate: 0.01, SendBurst: 1, Timeout: 20 * time.Millisecond})
	slow.Query(ctx, addrOf(silent), MethodPing, &Args{ID: idA}) // spends the burst
	dctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	if _, err := slow.Query(dctx, addrOf(silent), MethodPing, &Args{ID: idA}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Query = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("gave up after %v", el)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, ccancel)
	if _, err := slow.Query(cctx, addrOf(silent), MethodPing, &Args{ID: idA}); !errors.Is(err, context.Canceled) {
		t.Errorf("Query = %v, want Canceled", err)
	}
	if s := slow.Stats(); s.QueriesOut != 1 {
		t.Errorf("slow querier sent %d queries, want 1", s.QueriesOut)
	}
}
