package peer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// A dial tries uTP first; where uTP fails and TCP works, the address is
// dialled over TCP alone from then on, for noUTPFor. The memory holds at
// most maxNoUTP addresses.
func TestConnectPrefersUTPThenRemembers(t *testing.T) {
	var mu sync.Mutex
	utpCalls, tcpCalls := map[netip.AddrPort]int{}, map[netip.AddrPort]int{}
	works := netip.MustParseAddrPort("127.0.0.1:1000")
	tor, err := New(Config{
		InfoHash: [20]byte{1}, Dir: t.TempDir(),
		UTPDial: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			mu.Lock()
			utpCalls[a]++
			mu.Unlock()
			if a == works {
				c, _ := net.Pipe()
				return c, nil
			}
			if _, ok := ctx.Deadline(); !ok {
				t.Error("uTP dial without a deadline")
			}
			return nil, errors.New("no uTP there")
		},
		Dial: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			mu.Lock()
			tcpCalls[a]++
			mu.Unlock()
			c, _ := net.Pipe()
			return c, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tcpOnly := netip.MustParseAddrPort("127.0.0.1:2000")
	for range 3 {
		for _, a := range []netip.AddrPort{works, tcpOnly} {
			c, err := tor.connect(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
	}
	if utpCalls[works] != 3 || tcpCalls[works] != 0 {
		t.Fatalf("an address where uTP works: %d uTP dials, %d TCP: want 3 and 0", utpCalls[works], tcpCalls[works])
	}
	if utpCalls[tcpOnly] != 1 || tcpCalls[tcpOnly] != 3 {
		t.Fatalf("an address without uTP: %d uTP dials, %d TCP: want 1 and 3", utpCalls[tcpOnly], tcpCalls[tcpOnly])
	}
	now := time.Now()
	if !tor.noUTP.has(tcpOnly, now) {
		t.Fatal("the TCP-only address is not remembered")
	}
	if tor.noUTP.has(tcpOnly, now.Add(noUTPFor)) || tor.noUTP.has(tcpOnly, now) {
		t.Fatalf("the TCP-only address is remembered beyond noUTPFor (%v)", noUTPFor)
	}
	for i := range maxNoUTP + 100 {
		tor.noUTP.add(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1), now.Add(time.Duration(i)))
	}
	if n := tor.noUTP.len(); n != maxNoUTP {
		t.Fatalf("%d addresses remembered: want the bound, %d", n, maxNoUTP)
	}
	// The oldest went first.
	if tor.noUTP.has(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), 1), now) {
		t.Fatal("the oldest entry was kept")
	}

	// Without UTPDial, TCP alone.
	tcpCalls = map[netip.AddrPort]int{}
	tor.cfg.UTPDial = nil
	c, err := tor.connect(ctx, works)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if tcpCalls[works] != 1 {
		t.Fatal("no TCP dial without uTP")
	}
}

// A peer whose uTP neither connects nor refuses (libutp hears no ICMP, and
// a DHT on the port ignores the SYN) is dialled over TCP beside it once
// uTP's head start is over, long before utpConnectTimeout; TCP's
// connection is the dial's, the uTP attempt is called off, and a uTP
// connection that comes after all is closed unused.
func TestConnectRacesTCPAfterHeadStart(t *testing.T) {
	var (
		mu              sync.Mutex
		utpCtx          context.Context
		tcpWhilePending bool
	)
	release := make(chan struct{})
	late, lateOther := net.Pipe()
	defer lateOther.Close()
	tor, err := New(Config{
		InfoHash: [20]byte{1}, Dir: t.TempDir(),
		UTPDial: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			mu.Lock()
			utpCtx = ctx
			mu.Unlock()
			// It connects, but only once TCP has won (and the test
			// released it), or, should the dial wait for it, after 10 s.
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			return late, nil
		},
		Dial: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			mu.Lock()
			tcpWhilePending = utpCtx != nil && utpCtx.Err() == nil
			mu.Unlock()
			c, _ := net.Pipe()
			return c, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort("127.0.0.1:3000")
	c, err := tor.connect(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mu.Lock()
	defer mu.Unlock()
	if c == late || !tcpWhilePending {
		t.Fatalf("the dial took the uTP connection: %v; TCP dialled while uTP was pending: %v", c == late, tcpWhilePending)
	}
	if utpCtx.Err() == nil {
		t.Fatal("the uTP attempt was not called off once TCP connected")
	}
	if !tor.noUTP.has(a, time.Now()) {
		t.Fatal("an address TCP won is not dialled over TCP alone next time")
	}
	close(release)
	// The late uTP connection is closed unused: its other end reads EOF.
	_ = lateOther.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := lateOther.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the late uTP connection: read %v, want EOF (closed unused)", err)
	}
}
