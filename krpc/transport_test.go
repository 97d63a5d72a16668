package krpc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"node/internal/testutil"
	"node/routing"
)

// All sockets in these tests are on the loopback address with a port the
// kernel picks.
var loopback = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}

// listen opens a UDP socket on 127.0.0.1:0, closed when the test ends.
func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", loopback)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// newTransport starts a Transport on a fresh loopback socket, closed when
// the test ends.
func newTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	cfg.Conn = listen(t)
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// readMsg reads one datagram from c within d and parses it.
func readMsg(t *testing.T, c *net.UDPConn, d time.Duration) (Msg, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	m, err := Parse(buf[:n])
	if err != nil {
		t.Fatalf("Parse(%q): %v", buf[:n], err)
	}
	return m, from
}

// expectSilence asserts that nothing arrives on c within d.
func expectSilence(t *testing.T, c *net.UDPConn, d time.Duration) {
	t.Helper()
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err == nil {
		t.Fatalf("unexpected datagram from %v: %q", from, buf[:n])
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read: %v", err)
	}
}

func send(t *testing.T, c *net.UDPConn, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var (
	idA = id("AAAAAAAAAAAAAAAAAAAA")
	idB = id("BBBBBBBBBBBBBBBBBBBB")
)

// queryResult carries a Query's outcome out of a goroutine.
type queryResult struct {
	m   *Msg
	err error
}

func goQuery(tr *Transport, ctx context.Context, to netip.AddrPort) <-chan queryResult {
	ch := make(chan queryResult, 1)
	go func() {
		m, err := tr.Query(ctx, to, MethodPing, &Args{ID: idA})
		ch <- queryResult{m, err}
	}()
	return ch
}

func recvResult(t *testing.T, ch <-chan queryResult, d time.Duration) queryResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatal("query did not return")
		return queryResult{}
	}
}

func pendingLen(tr *Transport) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.pending)
}

func TestNewRequiresConn(t *testing.T) {
	if tr, err := New(Config{}); err == nil {
		tr.Close()
		t.Fatal("New without Conn succeeded")
	}
}

func TestQueryResponse(t *testing.T) {
	type seen struct {
		from netip.AddrPort
		q    Msg
	}
	seenCh := make(chan seen, 1)
	b := newTransport(t, Config{
		Version: "KB01",
		Handler: func(from netip.AddrPort, q *Msg) *Msg {
			seenCh <- seen{from, *q}
			return &Msg{
				R: &Return{
					ID: idB, Token: "tok:" + q.A.Target.String()[:8],
					Nodes: Nodes{node4}, Nodes6: Nodes6{node6},
				},
				IP: (*Addr)(&from),
			}
		},
	})
	a := newTransport(t, Config{Version: "KA01", ReadOnly: true, Timeout: 5 * time.Second})
	if got, want := a.LocalAddr(), addrOf(a.conn); got != want || !got.Addr().Is4() || got.Port() == 0 {
		t.Fatalf("LocalAddr = %v, want %v", got, want)
	}

	target := id("mnopqrstuvwxyz123456")
	r, err := a.Query(testCtx(t, 5*time.Second), b.LocalAddr(), MethodFindNode, &Args{ID: idA, Target: &target, Want: []string{"n4", "n6"}})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}

	s := <-seenCh
	if s.from != a.LocalAddr() {
		t.Errorf("handler saw from = %v, want %v", s.from, a.LocalAddr())
	}
	if s.q.Y != KindQuery || s.q.Q != MethodFindNode || s.q.V != "KA01" || !s.q.ReadOnly() || len(s.q.T) != TxIDLen {
		t.Errorf("handler saw query %+v", s.q)
	}
	if s.q.A.ID != idA || *s.q.A.Target != target || strings.Join(s.q.A.Want, ",") != "n4,n6" {
		t.Errorf("handler saw args %+v", *s.q.A)
	}

	if r.Y != KindResponse || r.T != s.q.T || r.V != "KB01" || r.RO != 0 {
		t.Errorf("response %+v (query t %q)", r, s.q.T)
	}
	if r.R.ID != idB || r.R.Token != "tok:"+target.String()[:8] {
		t.Errorf("response body %+v", *r.R)
	}
	if len(r.R.Nodes) != 1 || r.R.Nodes[0] != node4 || len(r.R.Nodes6) != 1 || r.R.Nodes6[0] != node6 {
		t.Errorf("response nodes %v / %v", r.R.Nodes, r.R.Nodes6)
	}
	if r.IP == nil || r.IP.AddrPort() != a.LocalAddr() {
		t.Errorf("response ip = %v, want %v", r.IP, a.LocalAddr())
	}

	// The responder counts its send after the datagram is out.
	// Counters are bumped just after the send or hand-off they count.
	testutil.WaitFor(t, 2*time.Second, "counters", func() bool { return b.Stats().PacketsOut == 1 && a.Stats().ResponsesIn == 1 })
	sa, sb := a.Stats(), b.Stats()
	if sa.QueriesOut != 1 || sa.ResponsesIn != 1 || sa.PacketsOut != 1 || sa.PacketsIn != 1 {
		t.Errorf("querier stats %+v", sa)
	}
	if sb.QueriesIn != 1 || sb.PacketsIn != 1 || sb.PacketsOut != 1 {
		t.Errorf("responder stats %+v", sb)
	}
}

// Many goroutines share one Transport; each response must reach the query
// it answers, which the responder proves by echoing the target.
func TestConcurrentQueries(t *testing.T) {
	const goroutines, perG = 20, 10
	b := newTransport(t, Config{Handler: func(from netip.AddrPort, q *Msg) *Msg {
		if q.A.Target == nil {
			return &Msg{E: &Error{Code: ErrorCodeProtocol, Msg: "no target"}}
		}
		// ID and token both derive from the target.
		tgt := *q.A.Target
		var rid routing.ID
		for i := range rid {
			rid[i] = ^tgt[i]
		}
		return &Msg{R: &Return{ID: rid, Token: hex.EncodeToString(tgt[:4])}}
	}})
	a := newTransport(t, Config{Timeout: 5 * time.Second})
	ctx := testCtx(t, 10*time.Second)

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perG)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				var tgt routing.ID
				copy(tgt[:], fmt.Sprintf("target-%03d-%03d-....", g, i))
				r, err := a.Query(ctx, b.LocalAddr(), MethodFindNode, &Args{ID: idA, Target: &tgt})
				if err != nil {
					errs <- fmt.Errorf("query %d/%d: %w", g, i, err)
					continue
				}
				for j := range tgt {
					if r.R.ID[j] != ^tgt[j] {
						errs <- fmt.Errorf("query %d/%d got the answer to another query: id %v", g, i, r.R.ID)
						break
					}
				}
				if r.R.Token != hex.EncodeToString(tgt[:4]) {
					errs <- fmt.Errorf("query %d/%d: token %q", g, i, r.R.Token)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	testutil.WaitFor(t, 2*time.Second, "ResponsesIn", func() bool { return a.Stats().ResponsesIn == goroutines*perG })
	if s := a.Stats(); s.ResponsesIn != goroutines*perG || s.Unmatched != 0 || s.Timeouts != 0 {
		t.Errorf("stats %+v", s)
	}
	if n := pendingLen(a); n != 0 {
		t.Errorf("%d transactions left pending", n)
	}
}

func TestQueryTimeout(t *testing.T) {
	silent := listen(t)
	a := newTransport(t, Config{Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := a.Query(testCtx(t, 5*time.Second), addrOf(silent), MethodPing, &Args{ID: idA})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Query = %v, want ErrTimeout", err)
	}
	if elapsed < 150*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("timed out after %v, want about 200ms", elapsed)
	}
	if s := a.Stats(); s.Timeouts != 1 || s.QueriesOut != 1 {
		t.Errorf("stats %+v", s)
	}
	// The query did reach the silent peer.
	m, _ := readMsg(t, silent, time.Second)
	if m.Q != MethodPing || m.A.ID != idA {
		t.Errorf("silent peer got %+v", m)
	}
}

func TestQueryContextCancel(t *testing.T) {
	silent := listen(t)
	a := newTransport(t, Config{Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := goQuery(a, ctx, addrOf(silent))
	testutil.WaitFor(t, 2*time.Second, "query sent", func() bool { return a.Stats().QueriesOut == 1 })
	cancel()
	r := recvResult(t, ch, 2*time.Second)
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Query = %v, want context.Canceled", r.err)
	}
	if s := a.Stats(); s.Timeouts != 0 {
		t.Errorf("cancel counted as timeout: %+v", s)
	}

	// A deadline shorter than Config.Timeout wins too.
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if _, err := a.Query(dctx, addrOf(silent), MethodPing, &Args{ID: idA}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Query = %v, want context.DeadlineExceeded", err)
	}
	if n := pendingLen(a); n != 0 {
		t.Errorf("%d transactions left pending", n)
	}
}

func TestCloseFailsInflight(t *testing.T) {
	silent := listen(t)
	a := newTransport(t, Config{Timeout: 10 * time.Second})
	ctx := testCtx(t, 10*time.Second)
	const n = 3
	chs := make([]<-chan queryResult, n)
	for i := range chs {
		chs[i] = goQuery(a, ctx, addrOf(silent))
	}
	testutil.WaitFor(t, 2*time.Second, "queries sent", func() bool { return a.Stats().QueriesOut == n })
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for i, ch := range chs {
		if r := recvResult(t, ch, 2*time.Second); !errors.Is(r.err, ErrClosed) {
			t.Errorf("in-flight query %d = %v, want ErrClosed", i, r.err)
		}
	}
	if _, err := a.Query(ctx, addrOf(silent), MethodPing, &Args{ID: idA}); !errors.Is(err, ErrClosed) {
		t.Errorf("Query after Close = %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A reply is matched by transaction ID and address: the right ID from the
// wrong port is not an answer.
func TestResponseFromWrongAddress(t *testing.T) {
	queried := listen(t)
	other := listen(t)
	a := newTransport(t, Config{Timeout: 300 * time.Millisecond})
	ch := goQuery(a, testCtx(t, 5*time.Second), addrOf(queried))

	q, from := readMsg(t, queried, 2*time.Second)
	if from != a.LocalAddr() {
		t.Fatalf("query came from %v, want %v", from, a.LocalAddr())
	}
	resp := Msg{T: q.T, Y: KindResponse, R: &Return{ID: idB}}
	send(t, other, from, encode(t, &resp))

	r := recvResult(t, ch, 5*time.Second)
	if !errors.Is(r.err, ErrTimeout) {
		t.Fatalf("Query = %v, %v; want ErrTimeout", r.m, r.err)
	}
	if s := a.Stats(); s.Unmatched != 1 || s.ResponsesIn != 0 || s.Timeouts != 1 {
		t.Errorf("stats %+v", s)
	}
}

// A reply to a transaction we never started is counted and dropped, and a
// duplicate reply counts the same way.
func TestUnmatchedResponses(t *testing.T) {
	peer := listen(t)
	a := newTransport(t, Config{Timeout: 5 * time.Second})
	stray := Msg{T: "zz", Y: KindResponse, R: &Return{ID: idB}}
	send(t, peer, a.LocalAddr(), encode(t, &stray))
	strayErr := Msg{T: "\x00\x00", Y: KindError, E: &Error{Code: 201, Msg: "x"}}
	send(t, peer, a.LocalAddr(), encode(t, &strayErr))
	longT := Msg{T: "abc", Y: KindResponse, R: &Return{ID: idB}}
	send(t, peer, a.LocalAddr(), encode(t, &longT))
	testutil.WaitFor(t, 2*time.Second, "3 unmatched", func() bool { return a.Stats().Unmatched == 3 })

	// The transport still works, and a duplicate answer is unmatched.
	ch := goQuery(a, testCtx(t, 5*time.Second), addrOf(peer))
	q, from := readMsg(t, peer, 2*time.Second)
	resp := encode(t, &Msg{T: q.T, Y: KindResponse, R: &Return{ID: idB}})
	send(t, peer, from, resp)
	send(t, peer, from, resp)
	r := recvResult(t, ch, 5*time.Second)
	if r.err != nil || r.m.R.ID != idB {
		t.Fatalf("Query = %+v, %v", r.m, r.err)
	}
	testutil.WaitFor(t, 2*time.Second, "duplicate counted", func() bool { s := a.Stats(); return s.Unmatched == 4 && s.ResponsesIn == 1 })
	if s := a.Stats(); s.ResponsesIn != 1 || s.ErrorsIn != 0 || s.Malformed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// A recognisable query with bad arguments earns error 203; anything else
// that fails to parse earns silence, so we never reflect garbage.
func TestMalformedQueries(t *testing.T) {
	handled := make(chan struct{}, 10)
	b := newTransport(t, Config{Version: "KB01", Handler: func(netip.AddrPort, *Msg) *Msg {
		handled <- struct{}{}
		return &Msg{R: &Return{ID: idB}}
	}})
	raw := listen(t)

	for _, tc := range []struct{ name, in, t string }{
		{"ping with 19-byte id", "d1:ad2:id19:" + id19 + "e1:q4:ping1:t2:aa1:y1:qe", "aa"},
		{"find_node with short target", "d1:ad2:id20:" + id20 + "6:target3:abce1:q9:find_node1:t1:\x001:y1:qe", "\x00"},
		{"query without a", "d1:q4:ping1:t4:abcd1:y1:qe", "abcd"},
		{"query without q", "d1:ad2:id20:" + id20 + "e1:t2:xy1:y1:qe", "xy"},
	} {
		send(t, raw, b.LocalAddr(), []byte(tc.in))
		m, from := readMsg(t, raw, 2*time.Second)
		if from != b.LocalAddr() {
			t.Errorf("%s: answer from %v", tc.name, from)
		}
		if m.Y != KindError || m.T != tc.t || m.E == nil || m.E.Code != ErrorCodeProtocol || m.V != "KB01" {
			t.Errorf("%s: answer %+v (e %+v), want error 203 with t %q", tc.name, m, m.E, tc.t)
		}
	}
	testutil.WaitFor(t, 2*time.Second, "Answered203", func() bool { return b.Stats().Answered203 == 4 })
	if s := b.Stats(); s.Answered203 != 4 || s.Malformed != 4 || s.QueriesIn != 0 {
		t.Errorf("after malformed queries: stats %+v", s)
	}

	garbage := []string{
		"hello",
		"li1ei2ee",
		"l1:t2:aa1:y1:qe",
		"d1:t2:aa1:y1:re", // a response without r: not a query
		"d1:ad2:id19:" + id19 + "e1:q4:ping1:y1:qe",                   // no t to echo
		"d1:ad2:id19:" + id19 + "e1:q4:ping1:t17:" + bigT + "1:y1:qe", // t too long to echo
		"d1:t2:aa1:y1:q1:z" + strings.Repeat("l", 50) + strings.Repeat("e", 50) + "e",
		"d1:ad2:id19:" + id19 + "e1:q4:ping1:t2:aa1:y1:qei1e", // trailing bytes
		"",
	}
	for _, g := range garbage {
		send(t, raw, b.LocalAddr(), []byte(g))
	}
	expectSilence(t, raw, 200*time.Millisecond)
	testutil.WaitFor(t, 2*time.Second, "garbage counted", func() bool {
		return b.Stats().Malformed == uint64(4+len(garbage))
	})
	if s := b.Stats(); s.Answered203 != 4 || s.PacketsIn != uint64(4+len(garbage)) {
		t.Errorf("after garbage: stats %+v", s)
	}
	if len(handled) != 0 {
		t.Errorf("handler ran %d times for malformed input", len(handled))
	}
}

func TestOversizedDatagram(t *testing.T) {
	const max = 512
	b := newTransport(t, Config{MaxPacket: max, Handler: func(netip.AddrPort, *Msg) *Msg {
		return &Msg{R: &Return{ID: idB}}
	}})
	raw := listen(t)

	// A valid ping padded with an unknown key to exactly n bytes.
	ping := func(n int) []byte {
		head := "d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:z"
		pad := n - len(head) - len("e")
		for d := 1; ; d++ { // the length prefix eats into the padding
			s := fmt.Sprintf("%d:", pad-d-1)
			if len(s) == d+1 {
				return []byte(head + s + strings.Repeat("x", pad-d-1) + "e")
			}
		}
	}
	exact, over := ping(max), ping(max+1)
	if len(exact) != max || len(over) != max+1 {
		t.Fatalf("padding: %d, %d", len(exact), len(over))
	}
	if _, err := Parse(over); err != nil {
		t.Fatalf("oversized ping does not parse: %v", err)
	}

	send(t, raw, b.LocalAddr(), over)
	send(t, raw, b.LocalAddr(), make([]byte, 4*max))
	expectSilence(t, raw, 200*time.Millisecond)
	testutil.WaitFor(t, 2*time.Second, "oversized counted", func() bool { return b.Stats().Oversized == 2 })

	// MaxPacket itself is still allowed.
	send(t, raw, b.LocalAddr(), exact)
	if m, _ := readMsg(t, raw, 2*time.Second); m.Y != KindResponse || m.T != "aa" {
		t.Errorf("answer to %d-byte ping: %+v", max, m)
	}
	if s := b.Stats(); s.Oversized != 2 || s.QueriesIn != 1 || s.Malformed != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestRemoteError(t *testing.T) {
	b := newTransport(t, Config{Handler: func(_ netip.AddrPort, q *Msg) *Msg {
		return &Msg{E: &Error{Code: ErrorCodeMethodUnknown, Msg: "Method Unknown: " + q.Q}}
	}})
	a := newTransport(t, Config{Timeout: 5 * time.Second})
	m, err := a.Query(testCtx(t, 5*time.Second), b.LocalAddr(), "frobnicate", &Args{ID: idA})
	var kerr *Error
	if !errors.As(err, &kerr) {
		t.Fatalf("Query = %v, want *Error", err)
	}
	if kerr.Code != ErrorCodeMethodUnknown || kerr.Msg != "Method Unknown: frobnicate" {
		t.Errorf("error %+v", kerr)
	}
	if m == nil || m.Y != KindError || m.E != kerr {
		t.Errorf("message returned with the error: %+v", m)
	}
	testutil.WaitFor(t, 2*time.Second, "ErrorsIn", func() bool { return a.Stats().ErrorsIn == 1 })
	if s := a.Stats(); s.ErrorsIn != 1 || s.ResponsesIn != 0 {
		t.Errorf("stats %+v", s)
	}
}

// A handler returning nil sends nothing; a client-only Transport (no
// Handler) counts queries but never answers.
func TestNoAnswer(t *testing.T) {
	for _, cfg := range []Config{
		{Handler: func(netip.AddrPort, *Msg) *Msg { return nil }},
		{},
	} {
		b := newTransport(t, cfg)
		raw := listen(t)
		q := Msg{T: "aa", Y: KindQuery, Q: MethodPing, A: &Args{ID: idA}}
		send(t, raw, b.LocalAddr(), encode(t, &q))
		testutil.WaitFor(t, 2*time.Second, "QueriesIn", func() bool { return b.Stats().QueriesIn == 1 })
		expectSilence(t, raw, 100*time.Millisecond)
		if s := b.Stats(); s.QueriesIn != 1 || s.PacketsOut != 0 {
			t.Errorf("handler %v: stats %+v", cfg.Handler != nil, s)
		}
	}
}

func TestMaxInflight(t *testing.T) {
	silent := listen(t)
	a := newTransport(t, Config{MaxInflight: 2, Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1 := goQuery(a, ctx, addrOf(silent))
	ch2 := goQuery(a, ctx, addrOf(silent))
	testutil.WaitFor(t, 2*time.Second, "2 queries in flight", func() bool { return a.Stats().QueriesOut == 2 })

	if _, err := a.Query(ctx, addrOf(silent), MethodPing, &Args{ID: idA}); !errors.Is(err, ErrTooManyInflight) {
		t.Errorf("third Query = %v, want ErrTooManyInflight", err)
	}
	// The limit is on the whole table, not per address.
	other := listen(t)
	if _, err := a.Query(ctx, addrOf(other), MethodPing, &Args{ID: idA}); !errors.Is(err, ErrTooManyInflight) {
		t.Errorf("Query to another node = %v, want ErrTooManyInflight", err)
	}

	cancel()
	recvResult(t, ch1, 2*time.Second)
	recvResult(t, ch2, 2*time.Second)
	// Slots free up once queries finish.
	b := newTransport(t, Config{Handler: func(netip.AddrPort, *Msg) *Msg { return &Msg{R: &Return{ID: idB}} }})
	if _, err := a.Query(testCtx(t, 5*time.Second), b.LocalAddr(), MethodPing, &Args{ID: idA}); err != nil {
		t.Errorf("Query after slots freed: %v", err)
	}
}

// wrappedConn hides the *net.UDPConn so the Transport takes its generic
// net.PacketConn path. If gate is non-nil, WriteTo waits for it to close
// after announcing itself on writing.
type wrappedConn struct {
	*net.UDPConn
	writing chan struct{}
	gate    chan struct{}
}

func (c *wrappedConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.gate != nil {
		c.writing <- struct{}{}
		<-c.gate
	}
	return c.UDPConn.WriteTo(b, addr)
}

func (c *wrappedConn) ReadFrom(b []byte) (int, net.Addr, error) { return c.UDPConn.ReadFrom(b) }

func TestGenericPacketConn(t *testing.T) {
	seen := make(chan netip.AddrPort, 1)
	b, err := New(Config{Conn: &wrappedConn{UDPConn: listen(t)}, Handler: func(from netip.AddrPort, q *Msg) *Msg {
		seen <- from
		return &Msg{R: &Return{ID: idB}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := New(Config{Conn: &wrappedConn{UDPConn: listen(t)}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.udp != nil {
		t.Fatal("wrapped conn taken for a *net.UDPConn")
	}
	r, err := a.Query(testCtx(t, 5*time.Second), b.LocalAddr(), MethodPing, &Args{ID: idA})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if r.R.ID != idB {
		t.Errorf("response %+v", r.R)
	}
	if from := <-seen; from != a.LocalAddr() {
		t.Errorf("handler saw from = %v, want %v", from, a.LocalAddr())
	}
}

// Close racing a Query that has registered but not yet sent: the query
// must still report ErrClosed, not the socket's "use of closed network
// connection".
func TestCloseDuringSend(t *testing.T) {
	silent := listen(t)
	wc := &wrappedConn{UDPConn: listen(t), writing: make(chan struct{}), gate: make(chan struct{})}
	a, err := New(Config{Conn: wc, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ch := goQuery(a, testCtx(t, 5*time.Second), addrOf(silent))
	select {
	case <-wc.writing:
	case <-time.After(2 * time.Second):
		t.Fatal("query never reached WriteTo")
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	close(wc.gate)
	if r := recvResult(t, ch, 2*time.Second); !errors.Is(r.err, ErrClosed) {
		t.Errorf("Query closed during send = %v, want ErrClosed", r.err)
	}
}

// Transaction IDs are unique among outstanding queries, whatever their
// destination: a repeat from the generator is skipped.
func TestTransactionIDsUniqueAmongOutstanding(t *testing.T) {
	a := newTransport(t, Config{Timeout: 10 * time.Second})
	seq := []uint32{7, 7, 7, 7, 9}
	a.mu.Lock()
	a.newTxID = func() uint32 { v := seq[0]; seq = seq[1:]; return v }
	a.mu.Unlock()
	silent1, silent2 := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1 := goQuery(a, ctx, addrOf(silent1))
	m1, _ := readMsg(t, silent1, 2*time.Second)
	ch2 := goQuery(a, ctx, addrOf(silent2))
	m2, _ := readMsg(t, silent2, 2*time.Second)
	if m1.T != "\x00\x00\x00\x07" || m2.T != "\x00\x00\x00\x09" {
		t.Errorf("outstanding transaction IDs %x and %x, want 7 and 9", m1.T, m2.T)
	}
	cancel()
	recvResult(t, ch1, 2*time.Second)
	recvResult(t, ch2, 2*time.Second)
}

// A datagram is decoded at most once: decoding is the dear part of a
// packet, and garbage should cost it once at most. Malformed
// queries used to be decoded a second time to find the "t" for error 203;
// one walk over the tokens now finds it, and spares the decoder what
// cannot decode at all.
func TestMalformedDecodedOnce(t *testing.T) {
	b := newTransport(t, Config{Handler: func(netip.AddrPort, *Msg) *Msg { return &Msg{R: &Return{ID: idB}} }})
	raw := listen(t)
	decodable := []string{ // well-formed bencode that fails validation
		"d1:ad2:id19:" + id19 + "e1:q4:ping1:t2:aa1:y1:qe",
		"d1:q4:ping1:t4:abcd1:y1:qe",
		"d1:t4:\x00\x00\x00\x011:y1:re",
	}
	undecodable := []string{
		"d1:ad2:id19:" + id19 + "e1:q4:ping1:t2:aa1:y1:qei1e", // trailing bytes
		"d1:t2:aa1:y1:q1:z" + strings.Repeat("l", 50) + strings.Repeat("e", 50) + "e",
		"d1:t2:aa1:y1:q1:zi12e", // truncated
		"hello",
	}
	before := decodes.Load()
	for _, p := range append(slices.Clone(decodable), undecodable...) {
		send(t, raw, b.LocalAddr(), []byte(p))
	}
	n := uint64(len(decodable) + len(undecodable))
	testutil.WaitFor(t, 2*time.Second, "all malformed", func() bool { return b.Stats().Malformed == n })
	if got := decodes.Load() - before; got != uint64(len(decodable)) {
		t.Errorf("%d malformed datagrams, %d of them decodable, decoded %d times", n, len(decodable), got)
	}
	for _, want := range []string{"aa", "abcd"} { // error 203 still answers
		if m, _ := readMsg(t, raw, 2*time.Second); m.T != want || m.E == nil || m.E.Code != ErrorCodeProtocol {
			t.Errorf("answer %+v, want error 203 for t %q", m, want)
		}
	}
	expectSilence(t, raw, 100*time.Millisecond)
}
