//go:build cgo

package utp

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"node/dht"
	"node/internal/adversary"
	"node/internal/testutil"
	"node/routing"
)

func listen(t testing.TB, network, addr string) *Socket {
	t.Helper()
	s, err := Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exchange sends n random bytes each way over a uTP connection from a to
// b, and checks they arrive.
func exchange(t testing.TB, a, b *Socket, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := b.Listener().Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	ca, err := a.Dial(ctx, b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer cb.Close()
	up, down := make([]byte, n), make([]byte, n)
	rand.Read(up)
	rand.Read(down)
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	var errUp, errDown error
	wg.Add(4)
	go func() { defer wg.Done(); _, _ = ca.Write(up) }()
	go func() { defer wg.Done(); _, _ = cb.Write(down) }()
	go func() { defer wg.Done(); gotUp, errUp = readN(cb, n) }()
	go func() { defer wg.Done(); gotDown, errDown = readN(ca, n) }()
	wg.Wait()
	if errUp != nil || errDown != nil || !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
		t.Fatalf("exchange over uTP: errors %v, %v; data equal %v, %v", errUp, errDown, bytes.Equal(gotUp, up), bytes.Equal(gotDown, down))
	}
}

func readN(c net.Conn, n int) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

// The DHT runs on the sockets uTP runs on: a network of three nodes, each
// on a uTP socket's DHT view (the IPv6 half too), bootstraps, announces
// and finds the announce, while uTP connections carry data over the same
// sockets.
func TestDHTOnSharedSocket(t *testing.T) {
	var socks, socks6 []*Socket
	var nodes []*dht.Node
	for i := range 3 {
		s := listen(t, "udp4", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 124, byte(i + 1)}), 0).String())
		s6 := listen(t, "udp6", "[::1]:0")
		cfg := dht.Config{Conn: s.PacketConn(), Conn6: s6.PacketConn()}
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].Addr().String(), nodes[0].Addr6().String()}
		}
		n, err := dht.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if n.Addr() != s.Addr() || n.Addr6() != s6.Addr() {
			t.Fatalf("node on %v and %v, sockets on %v and %v", n.Addr(), n.Addr6(), s.Addr(), s6.Addr())
		}
		socks, socks6, nodes = append(socks, s), append(socks6, s6), append(nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range nodes[1:] {
		if _, err := n.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// uTP beside the DHT, both families.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); exchange(t, socks[1], socks[0], 1<<20) }()
	go func() { defer wg.Done(); exchange(t, socks6[2], socks6[0], 1<<20) }()

	var ih routing.ID
	rand.Read(ih[:])
	if _, err := nodes[1].Announce(ctx, ih, 6881, nil); err != nil {
		t.Fatal(err)
	}
	found := make(chan netip.AddrPort, 16)
	if _, err := nodes[2].GetPeers(ctx, ih, found); err != nil {
		t.Fatal(err)
	}
	close(found)
	var got []netip.AddrPort
	for a := range found {
		got = append(got, a)
	}
	want4 := netip.AddrPortFrom(socks[1].Addr().Addr(), 6881)
	want6 := netip.AddrPortFrom(socks6[1].Addr().Addr(), 6881)
	if !contains(got, want4) || !contains(got, want6) {
		t.Fatalf("lookup found %v, want %v and %v", got, want4, want6)
	}
	wg.Wait()
}

func contains(as []netip.AddrPort, a netip.AddrPort) bool {
	for _, b := range as {
		if b == a {
			return true
		}
	}
	return false
}

// Closing the DHT's view closes the socket: the DHT's reader returns, and
// so do Accept and Dial. Closing the listener view alone leaves the DHT
// running and refuses new uTP connections.
func TestCloseViews(t *testing.T) {
	s := listen(t, "udp4", "127.0.124.10:0")
	other := listen(t, "udp4", "127.0.124.11:0")
	s.Listener().Close()
	if _, err := s.Listener().Accept(); err == nil {
		t.Fatal("Accept after the listener closed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c, err := other.Dial(ctx, s.Addr()); err == nil {
		c.Close()
		t.Fatal("a uTP connection to a closed listener")
	}
	if s.Refused() == 0 {
		t.Fatal("the SYN to a closed listener was not refused")
	}
	// The DHT view still carries datagrams.
	pc := s.PacketConn()
	if _, err := other.PacketConn().WriteTo([]byte("d1:y1:qe"), net.UDPAddrFromAddrPort(s.Addr())); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 100)
	n, from, err := pc.ReadFrom(b)
	if err != nil || string(b[:n]) != "d1:y1:qe" || addrPort(from) != other.Addr() {
		t.Fatalf("read %q from %v, %v", b[:n], from, err)
	}
	if err := pc.SetReadDeadline(time.Now()); err == nil {
		t.Fatal("SetReadDeadline: want an error, not a deadline that is not kept")
	}
	read := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(b)
		read <- err
	}()
	pc.Close()
	select {
	case err := <-read:
		if err != net.ErrClosed {
			t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a blocked ReadFrom")
	}
	if _, err := s.Dial(ctx, other.Addr()); err == nil {
		t.Fatal("Dial on a closed socket")
	}
}

// A SYN flood from many source ports: new connections are admitted at
// AcceptRate (after a burst of AcceptBurst), at most MaxInbound are open
// at once, the rest are dropped before libutp answers, and an honest
// dial gets through once the flood stops.
func TestSYNFlood(t *testing.T) {
	s := listen(t, "udp4", "127.0.125.1:0")
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := s.Listener().Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never closed: the worst case
			mu.Unlock()
		}
	}()
	srcs, err := adversary.PortSources(netip.MustParseAddr("127.0.125.2"), 200)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range srcs {
			c.Close()
		}
	}()
	goroutines := runtime.NumGoroutine()
	// flood sends n SYNs in rounds the socket's buffer holds, each
	// waiting for the firewall to have judged it: a kernel that drops
	// datagrams would test nothing.
	next := 0
	flood := func(n int) {
		t.Helper()
		for n > 0 {
			k := min(n, 100)
			seen := s.syns.Load()
			if _, err := adversary.UTPSYNFlood(srcs, s.Addr(), next, k); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 10*time.Second, "the SYNs judged", func() bool { return s.syns.Load() >= seen+int64(k) })
			next += k
			n -= k
		}
	}

	// The rate: 1000 SYNs as fast as they are taken in.
	start := time.Now()
	flood(1000)
	took := time.Since(start)
	admitted := s.syns.Load() - s.Refused()
	if limit := AcceptBurst + int64(AcceptRate*took.Seconds()) + 1; admitted > limit {
		t.Fatalf("%d of 1000 SYNs admitted in %v: the rate allows %d", admitted, took, limit)
	}
	t.Logf("rate: %d of 1000 SYNs admitted in %v, %d refused, %d open (libutp closes what overflows its backlog)",
		admitted, took, s.Refused(), s.Inbound())

	// The cap: with the rate limits lifted, the open connections reach
	// MaxInbound and stay there.
	s.lim.SetLimit(rate.Inf)
	s.srcs.set(rate.Inf, SourceAcceptBurst)
	for range 30 {
		if s.Inbound() >= MaxInbound {
			break
		}
		flood(100)
		if s.Inbound() > MaxInbound {
			t.Fatalf("%d incoming connections open, beyond the cap %d", s.Inbound(), MaxInbound)
		}
	}
	refused := s.Refused()
	flood(500)
	if s.Inbound() != MaxInbound || s.Refused() != refused+500 {
		t.Fatalf("at the cap: %d open (cap %d), %d of 500 more SYNs refused", s.Inbound(), MaxInbound, s.Refused()-refused)
	}
	if n := runtime.NumGoroutine(); n > goroutines+10 {
		t.Fatalf("%d goroutines after the flood, %d before", n, goroutines)
	}

	// Closed connections leave the count, and an honest dial works.
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	held = nil
	mu.Unlock()
	if s.Inbound() != 0 {
		t.Fatalf("%d incoming connections counted after all closed", s.Inbound())
	}
	s.lim.SetLimit(AcceptRate)
	s.srcs.set(SourceAcceptRate, SourceAcceptBurst)
	testutil.WaitFor(t, 5*time.Second, "a token for the honest dial", func() bool { return s.lim.Tokens() >= 1 })
	honest := listen(t, "udp4", "127.0.126.3:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := honest.Dial(ctx, s.Addr())
	if err != nil {
		t.Fatalf("honest dial after the flood: %v", err)
	}
	c.Close()
	s.Close()
	<-done
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
}

// The socket's kernel buffers are socketBuffer, as far as the system
// allows (net.core.rmem_max).
func TestSocketBuffer(t *testing.T) {
	s := listen(t, "udp4", "127.0.124.30:0")
	uc := udpConnOf(s.lib)
	if uc == nil {
		t.Fatal("go-libutp's UDP socket not found: its buffers keep the kernel's default")
	}
	want := socketBuffer
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		if m, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			want = min(want, m)
		}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := raw.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	// Linux reports twice what was set, for its bookkeeping.
	if got < want {
		t.Fatalf("SO_RCVBUF %d, want at least %d", got, want)
	}
}
