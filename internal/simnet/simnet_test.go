package simnet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"node/internal/testutil"
)

func listen(t *testing.T, nw *Network, silent bool) *Conn {
	t.Helper()
	c, err := nw.Listen(silent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A packet arrives whole, from its sender's address, no sooner than the
// model's delay between the two.
func TestDelivery(t *testing.T) {
	cfg := Internet(1)
	cfg.Loss = 0
	nw := New(cfg)
	defer nw.Close()
	a, b := listen(t, nw, false), listen(t, nw, false)
	if a.AddrPort() == b.AddrPort() || !a.AddrPort().Addr().IsPrivate() {
		t.Fatalf("addresses %v and %v", a.AddrPort(), b.AddrPort())
	}
	start := time.Now()
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := b.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := b.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Since(start); got < Delay(a, b) {
		t.Errorf("arrived after %v, before the model's %v", got, Delay(a, b))
	}
	if string(buf[:n]) != "hello" || from.String() != a.LocalAddr().String() {
		t.Fatalf("got %q from %v", buf[:n], from)
	}
	if st := nw.Stats(); st.Sent != 1 || st.Delivered != 1 || b.Received() != 1 {
		t.Fatalf("stats %+v, received %d", st, b.Received())
	}
}

// Over many packets the share lost is near Config.Loss, and every packet
// is either lost or delivered.
func TestLossRate(t *testing.T) {
	cfg := Internet(2)
	cfg.AccessMedian, cfg.RadiusKm = 0, 1 // quick delivery
	cfg.QueueLen = 1 << 20
	nw := New(cfg)
	defer nw.Close()
	a, b := listen(t, nw, false), listen(t, nw, false)
	const n = 100_000
	for range n {
		if _, err := a.WriteToAddrPort([]byte{1}, b.AddrPort()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for nw.Stats().Delivered+nw.Stats().Lost < n && time.Now().Before(deadline) {
		b.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := b.ReadFromAddrPort(make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
	}
	st := nw.Stats()
	if st.Delivered+st.Lost != n {
		t.Fatalf("stats %+v: %d packets unaccounted for", st, n-st.Delivered-st.Lost)
	}
	// 1% of 100,000: mean 1,000, standard deviation about 31.
	if st.Lost < 850 || st.Lost > 1150 {
		t.Fatalf("lost %d of %d, want about 1%%", st.Lost, n)
	}
}

// A read deadline in the past fails at once, one in the future fails
// when it passes, and moving it unblocks a waiting reader.
func TestReadDeadline(t *testing.T) {
	nw := New(Config{})
	defer nw.Close()
	c := listen(t, nw, false)
	buf := make([]byte, 8)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := c.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	var ne net.Error
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := c.ReadFrom(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("future deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(buf)
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("read returned with no deadline: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	c.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("after the deadline moved: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("moving the deadline did not unblock the reader")
	}
}

// Close unblocks a reader, and later reads and writes fail; packets to
// the closed address are dropped as unroutable.
func TestCloseUnblocks(t *testing.T) {
	nw := New(Config{})
	defer nw.Close()
	a, b := listen(t, nw, false), listen(t, nw, false)
	errc := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFrom(make([]byte, 8))
		errc <- err
	}()
	b.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock the reader")
	}
	if _, err := b.WriteToAddrPort([]byte{1}, a.AddrPort()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	a.WriteToAddrPort([]byte{1}, b.AddrPort())
	if st := nw.Stats(); st.NoRoute != 1 {
		t.Fatalf("stats %+v, want one unroutable", st)
	}
}

// A receiver that does not read holds at most QueueLen packets; the rest
// are dropped and counted.
func TestQueueBound(t *testing.T) {
	nw := New(Config{QueueLen: 16})
	defer nw.Close()
	a, b := listen(t, nw, false), listen(t, nw, false)
	for range 100 {
		a.WriteToAddrPort([]byte{1}, b.AddrPort())
	}
	testutil.WaitFor(t, 10*time.Second, "100 packets delivered or dropped", func() bool {
		return nw.Stats().Delivered+nw.Stats().DroppedFull >= 100
	})
	if st := nw.Stats(); st.Delivered != 16 || st.DroppedFull != 84 {
		t.Fatalf("stats %+v, want 16 delivered and 84 dropped", st)
	}
	b.SetReadDeadline(time.Now().Add(-time.Second))
	for i := range 17 {
		_, _, err := b.ReadFrom(make([]byte, 8))
		if (i < 16) != (err == nil) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
}

// A silent endpoint receives nothing but can send.
func TestSilent(t *testing.T) {
	nw := New(Config{})
	defer nw.Close()
	a, s := listen(t, nw, false), listen(t, nw, true)
	s.WriteToAddrPort([]byte{1}, a.AddrPort())
	a.WriteToAddrPort([]byte{2}, s.AddrPort())
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8)
	if _, from, err := a.ReadFromAddrPort(buf); err != nil || from != s.AddrPort() {
		t.Fatalf("from the silent endpoint: %v %v", from, err)
	}
	if st := nw.Stats(); st.Silent != 1 || s.Received() != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// The Internet model's median round trip is about 100 ms.
func TestInternetMedianRTT(t *testing.T) {
	if m := MedianRTT(Internet(3), 20_000); m < 90*time.Millisecond || m > 110*time.Millisecond {
		t.Fatalf("median RTT %v", m)
	}
}

// An ideal network loses nothing.
func TestIdeal(t *testing.T) {
	cfg := Internet(4)
	cfg.Loss = 0.5
	cfg.QueueLen = 1000
	nw := New(cfg)
	defer nw.Close()
	nw.SetIdeal(true)
	a, b := listen(t, nw, false), listen(t, nw, false)
	for range 1000 {
		a.WriteToAddrPort([]byte{1}, b.AddrPort())
	}
	testutil.WaitFor(t, 10*time.Second, "1000 packets delivered", func() bool { return nw.Stats().Delivered == 1000 })
	if st := nw.Stats(); st.Lost != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// ListenAt takes the address it is given, once, and packets reach it
// there, from there.
func TestListenAt(t *testing.T) {
	nw := New(Config{})
	defer nw.Close()
	pa, pb := netip.MustParseAddrPort("45.1.2.3:6881"), netip.MustParseAddrPort("[2001:db8::1]:6881")
	a, err := nw.ListenAt(pa, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := nw.ListenAt(pa, false); err == nil {
		t.Fatal("a second endpoint at a taken address")
	}
	b, err := nw.ListenAt(pb, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.AddrPort() != pa || b.AddrPort() != pb {
		t.Fatalf("listening at %v and %v", a.AddrPort(), b.AddrPort())
	}
	if _, err := a.WriteToAddrPort([]byte("hi"), pb); err != nil {
		t.Fatal(err)
	}
	if err := b.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, from, err := b.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != "hi" || from != pa {
		t.Fatalf("got %q from %v: %v", buf[:n], from, err)
	}
}
