package delayproxy

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"node/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every connection until the other side half-closes,
// then half-closes too.
func echoServer(t *testing.T, ip string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func dial(t *testing.T, p *Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// Bytes come back intact, in order, and no sooner than the delay of both
// directions; a half-close is forwarded both ways after its bytes.
func TestDelayedEcho(t *testing.T) {
	const delay = 50 * time.Millisecond
	p, err := Listen("127.0.212.1:0", echoServer(t, "127.0.212.2"), Options{Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	msg := make([]byte, 3<<20)
	for i := range msg {
		msg[i] = byte(rand.Uint32())
	}
	start := time.Now()
	go func() {
		_, _ = c.Write(msg[:1])
	}()
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*delay {
		t.Fatalf("echo after %v, the proxy adds %v", rtt, 2*delay)
	}
	go func() {
		_, _ = c.Write(msg[1:])
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c) // ends at the echo's half-close
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(first, got...), msg) {
		t.Fatalf("%d bytes back, not what was sent (%d)", len(got)+1, len(msg))
	}
	// A delay line holds many reads at once; stop-and-wait would hold one.
	if peak := p.PeakInFlight(); peak <= readChunk {
		t.Fatalf("at most %d bytes in flight: not a delay line", peak)
	}
}

// A direction holds at most MaxInFlight bytes (and one read's worth to
// let a large read through): a receiver that does not read backs the
// sender up instead of growing the proxy.
func TestMaxInFlightBound(t *testing.T) {
	const limit = 256 << 10
	ln, err := net.Listen("tcp", "127.0.212.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	p, err := Listen("127.0.212.4:0", ln.Addr().(*net.TCPAddr).AddrPort(), Options{Delay: time.Millisecond, MaxInFlight: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	srv := <-accepted
	defer srv.Close()
	// The sender writes until the proxy and the kernel's buffers are
	// full: a write deadline ends it.
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	chunk := make([]byte, 64<<10)
	sent := 0
	for {
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	if peak := p.PeakInFlight(); peak > limit+readChunk {
		t.Fatalf("%d bytes held in one direction, bound %d", peak, limit+readChunk)
	}
	t.Logf("sent %d KiB, proxy held at most %d KiB", sent>>10, p.PeakInFlight()>>10)
	if peak := p.PeakInFlight(); peak < limit-readChunk {
		t.Fatalf("the proxy held at most %d bytes: its bound %d was never reached", peak, limit)
	}
	// What was held is delivered once the receiver reads.
	_ = srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadFull(srv, make([]byte, sent)); err != nil {
		t.Fatalf("%d of %d bytes: %v", n, sent, err)
	}
}

// Close ends every proxied connection and returns with every goroutine
// gone (goleak checks at the end), though bytes are still waiting.
func TestCloseEndsConnections(t *testing.T) {
	p, err := Listen("127.0.212.5:0", echoServer(t, "127.0.212.6"), Options{Delay: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	if _, err := c.Write([]byte("held for ten seconds")); err != nil {
		t.Fatal(err)
	}
	// The connection is up at the proxy once the dial to the target is.
	testutil.WaitFor(t, 5*time.Second, "the proxy took the connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.conns) == 1
	})
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a closed proxy succeeded")
	}
}

// Only loopback addresses are proxied.
func TestLoopbackOnly(t *testing.T) {
	if _, err := Listen("127.0.212.7:0", netip.MustParseAddrPort("192.0.2.1:80"), Options{}); err == nil {
		t.Fatal("a target off loopback was accepted")
	}
}
