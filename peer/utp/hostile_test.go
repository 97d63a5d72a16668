//go:build cgo

package utp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	libutp "github.com/anacrolix/go-libutp"
	"golang.org/x/time/rate"

	"node/internal/adversary"
	"node/internal/testutil"
)

// libutp asserts on values remote peers choose, so the copy we build
// (third_party/go-libutp) must have its asserts compiled out.
func TestLibutpAssertsOff(t *testing.T) {
	if libutp.AssertsEnabled() {
		t.Fatal("libutp built with asserts on: a remote peer can abort the process")
	}
}

// rawPeer binds a UDP socket on ip for a hand-made uTP peer.
func rawPeer(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// acceptOne returns the next incoming connection, or fails the test.
func acceptOne(t *testing.T, s *Socket) net.Conn {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := s.Listener().Accept()
		if err != nil {
			close(got)
			return
		}
		got <- c
	}()
	select {
	case c, ok := <-got:
		if !ok {
			t.Fatal("accept failed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no incoming connection")
	}
	return nil
}

// A peer whose timestamp_difference drives libutp's delay average to
// exactly -2^31 (which aborted a libutp built with asserts): the process
// survives, the connection still answers, and the socket still carries
// an honest connection. About 11 s: the average is taken every 5 s.
func TestUTPDelayAverageOverflow(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 11 s")
	}
	s := listen(t, "udp4", "127.0.123.1:0")
	raw := rawPeer(t, "127.0.123.2")
	u, err := adversary.UTPDial(raw, s.Addr(), 7000, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := acceptOne(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adversary.UTPDelayAbort(ctx, u, 5200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The last sample is judged when the packet arrives; data after it
	// is acked only if libutp lived through it.
	seq := u.Seq
	if err := u.Send(adversary.UTPData, 1, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, err := u.ReadUntil(5*time.Second, func(h adversary.UTPHeader) bool {
		return h.Type == adversary.UTPState && h.Ack == seq
	}); err != nil {
		t.Fatalf("no ack after the delay samples: %v", err)
	}
	if b, err := readN(c, 11); err != nil || string(b) != "\x00still here" {
		t.Fatalf("read %q, %v", b, err)
	}
	other := listen(t, "udp4", "127.0.123.3:0")
	exchange(t, other, s, 1<<16)
}

// A peer that sends past the receive window while our reader is not
// reading: the connection fails with ErrReadBufferOverflow once its
// buffer would pass ReadBufferFactor receive buffers, the buffer is
// dropped, and the peer is told (FIN) rather than acked on forever.
func TestUTPWindowFlood(t *testing.T) {
	s := listen(t, "udp4", "127.0.122.1:0")
	rcvbuf := s.lib.ReadBufferLen()
	limit := libutp.ReadBufferFactor * rcvbuf
	raw := rawPeer(t, "127.0.122.2")
	u, err := adversary.UTPDial(raw, s.Addr(), 9000, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := acceptOne(t, s)
	lc := c.(*inConn).Conn.(*libutp.Conn)
	const chunk = 32 << 10
	sent, err := adversary.UTPWindowFlood(u, 2*limit, chunk)
	if err != nil {
		t.Fatalf("flood: %v after %d bytes", err, sent)
	}
	if sent > limit+chunk {
		t.Fatalf("%d bytes taken before the connection was closed: the bound is %d", sent, limit)
	}
	if sent < limit-chunk {
		t.Fatalf("connection closed after %d bytes, before the bound %d", sent, limit)
	}
	if n := lc.ReadBufferLen(); n != 0 {
		t.Fatalf("%d bytes still buffered after the overflow", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, libutp.ErrReadBufferOverflow) {
		t.Fatalf("read after the overflow: %d bytes, %v", n, err)
	}
	t.Logf("receive buffer %d, bound %d, %d bytes taken before the close", rcvbuf, limit, sent)
}

// An honest peer writing to a reader that pauses is not mistaken for a
// flood: the window closes at one receive buffer and all the data
// arrives once the reader reads.
func TestUTPPausedReader(t *testing.T) {
	a := listen(t, "udp4", "127.0.122.3:0")
	b := listen(t, "udp4", "127.0.122.4:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := a.Dial(ctx, b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb := acceptOne(t, b)
	rcvbuf := b.lib.ReadBufferLen()
	n := 4 * rcvbuf
	var wg sync.WaitGroup
	wg.Add(1)
	var werr error
	go func() {
		defer wg.Done()
		_, werr = ca.Write(make([]byte, n))
	}()
	lc := cb.(*inConn).Conn.(*libutp.Conn)
	testutil.WaitFor(t, 10*time.Second, "the receive window to fill", func() bool { return lc.ReadBufferLen() >= rcvbuf/2 })
	got, err := readN(cb, n)
	if err != nil || len(got) != n {
		t.Fatalf("read %d of %d bytes: %v", len(got), n, err)
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
}

// One host flooding SYNs from many ports takes at most its source's
// budget (SourceAcceptRate after a burst of SourceAcceptBurst), and a
// peer from another /24 connects while the flood goes on.
func TestSourceSYNBudget(t *testing.T) {
	s := listen(t, "udp4", "127.0.121.1:0")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := s.Listener().Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	srcs, err := adversary.PortSources(netip.MustParseAddr("127.0.121.2"), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range srcs {
			c.Close()
		}
	}()
	// flood sends a round of SYNs the socket's buffer holds and waits for
	// the firewall to have judged them: a kernel that drops datagrams
	// would test nothing.
	next := 0
	flood := func() {
		t.Helper()
		seen := s.syns.Load()
		if _, err := adversary.UTPSYNFlood(srcs, s.Addr(), next, 100); err != nil {
			t.Fatal(err)
		}
		next += 100
		testutil.WaitFor(t, 10*time.Second, "the SYNs judged", func() bool { return s.syns.Load() >= seen+100 })
	}
	start := time.Now()
	for range 10 {
		flood()
	}
	honest := listen(t, "udp4", "127.0.120.2:0")
	dialed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := honest.Dial(ctx, s.Addr())
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
flooding:
	for {
		select {
		case err = <-dialed:
			break flooding
		default:
			flood()
		}
	}
	if err != nil {
		t.Fatalf("dial from another source during the flood: %v", err)
	}
	sent := next
	took := time.Since(start)
	admitted := s.syns.Load() - s.Refused() - 1 // the honest one
	if limit := SourceAcceptBurst + int64(SourceAcceptRate*took.Seconds()) + 1; admitted > limit {
		t.Fatalf("%d flood SYNs admitted in %v: the source's budget allows %d", admitted, took, limit)
	}
	t.Logf("%d flood SYNs sent in %v, %d admitted", sent, took, admitted)
	s.Close()
	<-done
}

// The SYN budgets are per /24 (IPv4) and /64 (IPv6), and at most
// MaxSourceBuckets sources are tracked.
func TestSourceLimits(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"127.0.1.1", "127.0.1.200", true},
		{"127.0.1.1", "127.0.2.1", false},
		{"::ffff:127.0.1.1", "127.0.1.9", true},
		{"2001:db8:0:1::1", "2001:db8:0:1:ffff::2", true},
		{"2001:db8:0:1::1", "2001:db8:0:2::1", false},
	} {
		if got := sourceOf(netip.MustParseAddr(c.a)) == sourceOf(netip.MustParseAddr(c.b)); got != c.same {
			t.Errorf("%s and %s one source: %v, want %v", c.a, c.b, got, c.same)
		}
	}
	l := sourceLimits{limit: SourceAcceptRate, burst: SourceAcceptBurst, m: map[netip.Prefix]*rate.Limiter{}}
	now := time.Now()
	a := netip.MustParseAddr("10.0.0.1")
	for i := range SourceAcceptBurst {
		if !l.allow(a, now) {
			t.Fatalf("SYN %d of the burst refused", i)
		}
	}
	if l.allow(netip.MustParseAddr("10.0.0.99"), now) {
		t.Fatal("SYN beyond the burst of a /24 admitted")
	}
	if !l.allow(netip.MustParseAddr("10.0.1.1"), now) {
		t.Fatal("SYN from another /24 refused")
	}
	// The table never passes MaxSourceBuckets. Full, it forgets the idle
	// sources (buckets full again), and all of them if none is idle.
	src := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{11, byte(i >> 8), byte(i), 1}) }
	l = sourceLimits{limit: SourceAcceptRate, burst: SourceAcceptBurst, m: map[netip.Prefix]*rate.Limiter{}}
	later := now.Add(10 * time.Second)
	for i := range MaxSourceBuckets {
		at := now
		if i%2 == 1 {
			at = later
		}
		l.allow(src(i), at)
	}
	if n := l.len(); n != MaxSourceBuckets {
		t.Fatalf("%d sources tracked, want %d", n, MaxSourceBuckets)
	}
	if !l.allow(netip.MustParseAddr("12.0.0.1"), later) {
		t.Fatal("new source refused with the table full")
	}
	if n := l.len(); n != MaxSourceBuckets/2+1 {
		t.Fatalf("%d sources tracked after forgetting the idle half, want %d", n, MaxSourceBuckets/2+1)
	}
	for i := range MaxSourceBuckets {
		l.allow(src(MaxSourceBuckets+i), later)
		if n := l.len(); n > MaxSourceBuckets {
			t.Fatalf("%d sources tracked, bound %d", n, MaxSourceBuckets)
		}
	}
	if !l.allow(netip.MustParseAddr("13.0.0.1"), later) {
		t.Fatal("new source refused with the table full of busy sources")
	}
}

// A peer that sends past the window out of order: libutp holds out-of-
// order data for reordering up to one receive buffer (UTP_RCVBUF) and
// drops the rest, where it held up to 1023 datagrams of any size.
func TestUTPReorderFlood(t *testing.T) {
	s := listen(t, "udp4", "127.0.122.5:0")
	rcvbuf := s.lib.ReadBufferLen()
	raw := rawPeer(t, "127.0.122.6")
	u, err := adversary.UTPDial(raw, s.Addr(), 11000, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := acceptOne(t, s)
	const chunk = 60 << 10
	n := 3 * rcvbuf / chunk
	held, err := adversary.UTPReorderFlood(u, n, chunk)
	if err != nil {
		t.Fatal(err)
	}
	if want := rcvbuf / chunk; held != want {
		t.Fatalf("%d of %d out-of-order packets of %d bytes held, want %d (one receive buffer of %d)", held, n, chunk, want, rcvbuf)
	}
	if b, err := readN(c, (held+1)*chunk); err != nil {
		t.Fatalf("reading the %d bytes delivered: %v", len(b), err)
	}
}
