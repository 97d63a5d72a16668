package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"node/routing"
)

// listenLoopback binds UDP on 127.0.<subnet>.<host>:0. Tests give each node
// its own address, as the DHT would see distinct hosts.
func listenLoopback(t testing.TB, subnet, host int) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.%d.%d:0", subnet, host))
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// startOurs starts count nodes on 127.0.<subnet>.1.., each bootstrapping
// through the given addresses (and the nodes started before it).
func startOurs(t testing.TB, subnet, count int, boot []string, mod func(*Config)) []*Node {
	t.Helper()
	nodes := make([]*Node, 0, count)
	for i := 0; i < count; i++ {
		cfg := Config{Conn: listenLoopback(t, subnet, i+1), Bootstrap: boot, QueryTimeout: time.Second}
		if mod != nil {
			mod(&cfg)
		}
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
		if len(boot) == 0 {
			boot = []string{n.Addr().String()}
		}
	}
	return nodes
}

func bootstrapAll(t testing.TB, ctx context.Context, nodes []*Node) {
	t.Helper()
	for _, n := range nodes[1:] {
		if _, err := n.Bootstrap(ctx); err != nil {
			t.Fatalf("bootstrap %v: %v", n.Addr(), err)
		}
	}
	// A second round lets the early nodes learn of the later ones.
	for _, n := range nodes {
		_, _ = n.Bootstrap(ctx)
	}
}

func collect(ch <-chan netip.AddrPort) map[netip.AddrPort]bool {
	got := map[netip.AddrPort]bool{}
	for p := range ch {
		got[p] = true
	}
	return got
}

func TestOurSwarmAnnounceAndGetPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := startOurs(t, 1, 30, nil, nil)
	bootstrapAll(t, ctx, nodes)

	ih := routing.RandomID(testRand())
	st, err := nodes[5].Announce(ctx, ih, 6881, nil)
	if err != nil {
		t.Fatalf("announce: %v (%+v)", err, st)
	}
	if st.Announced < routing.K/2 {
		t.Fatalf("announced to %d nodes, want at least %d", st.Announced, routing.K/2)
	}
	want := netip.AddrPortFrom(nodes[5].Addr().Addr(), 6881)

	ch := make(chan netip.AddrPort, 16)
	var ls LookupStats
	go func() {
		defer close(ch)
		ls, err = nodes[20].GetPeers(ctx, ih, ch)
	}()
	got := collect(ch)
	if err != nil {
		t.Fatal(err)
	}
	if !got[want] || len(got) != 1 {
		t.Fatalf("peers %v, want exactly %v; stats %+v", got, want, ls)
	}
}
