package dht

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// A querier that asks a dual-stack node's IPv4 socket for both families
// (want n4,n6) gets nodes of both, but the values of IPv4 peers alone,
// and the IPv6 socket's querier the IPv6 ones alone: BEP 32's two DHTs
// are independent, so a peer of one family never goes out over the
// other's socket, and a values list is of one family.
func TestValuesOfQuerierFamily(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := startDual(t, 170, 12, nil)
	bootstrapAll(t, ctx, nodes)
	n := nodes[4]
	cl4 := newClient(t, listenLoopback(t, 170, 200))
	cl6 := newClient(t, listenLoopback6(t))
	ih := routing.RandomID(testRand())
	port := 7101
	for _, c := range []struct {
		cl *krpc.Transport
		to netip.AddrPort
	}{{cl4, n.Addr()}, {cl6, n.Addr6()}} {
		r, err := c.cl.Query(ctx, c.to, krpc.MethodGetPeers, &krpc.Args{ID: routing.RandomID(testRand()), InfoHash: &ih})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.cl.Query(ctx, c.to, krpc.MethodAnnouncePeer, &krpc.Args{ID: routing.RandomID(testRand()), InfoHash: &ih, Token: r.R.Token, Port: &port}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		cl   *krpc.Transport
		to   netip.AddrPort
		want []string
		fam  int
	}{
		{"v4 no want", cl4, n.Addr(), nil, fam4},
		{"v4 want both", cl4, n.Addr(), []string{"n4", "n6"}, fam4},
		{"v4 want n6", cl4, n.Addr(), []string{"n6"}, fam4},
		{"v6 no want", cl6, n.Addr6(), nil, fam6},
		{"v6 want both", cl6, n.Addr6(), []string{"n6", "n4"}, fam6},
		{"v6 want n4", cl6, n.Addr6(), []string{"n4"}, fam6},
	} {
		r, err := tc.cl.Query(ctx, tc.to, krpc.MethodGetPeers, &krpc.Args{ID: routing.RandomID(testRand()), InfoHash: &ih, Want: tc.want})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(r.R.Values) != 1 || familyOf(r.R.Values[0].Addr()) != tc.fam || int(r.R.Values[0].Port()) != port {
			t.Fatalf("%s: values %v, want the one peer of the querier's family", tc.name, r.R.Values)
		}
		// want still picks the nodes.
		if len(tc.want) == 2 && (len(r.R.Nodes) == 0 || len(r.R.Nodes6) == 0) {
			t.Fatalf("%s: %d nodes, %d nodes6", tc.name, len(r.R.Nodes), len(r.R.Nodes6))
		}
	}
}

// Ping with an IPv4-mapped IPv6 address (as a dual-stack listener reports
// an IPv4 peer) puts the plain IPv4 address in the table, as OfferNode
// does, on a node of one socket and on a dual-stack one.
func TestPingUnmaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	target, err := New(Config{Conn: listenLoopback(t, 171, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	mapped := netip.AddrPortFrom(netip.AddrFrom16(target.Addr().Addr().As16()), target.Addr().Port())
	single, err := New(Config{Conn: listenLoopback(t, 171, 2), QueryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	dual := startDual(t, 171, 1, nil)[0]
	for name, n := range map[string]*Node{"single": single, "dual": dual} {
		id, err := n.Ping(ctx, mapped)
		if err != nil {
			t.Fatalf("%s: ping %v: %v", name, mapped, err)
		}
		if id != target.ID() {
			t.Fatalf("%s: ping answered by %v", name, id)
		}
		es, err := n.Entries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Addr != target.Addr() {
			t.Fatalf("%s: table %v, want %v alone", name, es, target.Addr())
		}
	}
}

// The two sockets of a dual-stack node share one send budget: with room
// for one answer, a query on each socket gets one answer between them.
func TestDualStackSendBudgetShared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A budget that refills once in 1000 s: one token for the test.
	n, err := New(Config{Conn: listenLoopback(t, 172, 1), Conn6: listenLoopback6(t), SendRate: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Read-only queriers: the node does not ping them back, which would
	// spend the budget on its own queries.
	client := func(pc net.PacketConn) *krpc.Transport {
		cl, err := krpc.New(krpc.Config{Conn: pc, ReadOnly: true, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	cl4, cl6 := client(listenLoopback(t, 172, 2)), client(listenLoopback6(t))
	answered := 0
	for _, q := range []struct {
		cl *krpc.Transport
		to netip.AddrPort
	}{{cl4, n.Addr()}, {cl6, n.Addr6()}} {
		_, err := q.cl.Query(ctx, q.to, krpc.MethodPing, &krpc.Args{ID: routing.RandomID(testRand())})
		switch {
		case err == nil:
			answered++
		case !errors.Is(err, krpc.ErrTimeout):
			t.Fatal(err)
		}
	}
	dropped := func() uint64 {
		s, err := n.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Transport.SendDropped + s.V6.Transport.SendDropped
	}
	testutil.WaitFor(t, 5*time.Second, "the second answer counted as dropped", func() bool { return dropped() == 1 })
	if answered != 1 {
		t.Fatalf("%d answers on a budget of one", answered)
	}
}

// A node on its IPv6 socket alone takes the saved IPv6 ID, not the IPv4
// one, and saves it back as the IPv6 ID, keeping the IPv4 one for a later
// run with both; so does a dual-stack node whose IPv4 socket fails.
func TestIPv6AloneSavedID(t *testing.T) {
	r := testRand()
	id, id6 := routing.RandomID(r), routing.RandomID(r)
	busy := listenLoopback(t, 173, 1)
	defer busy.Close()
	for name, cfg := range map[string]func() Config{
		"one socket":   func() Config { return Config{Conn: listenLoopback6(t)} },
		"IPv4 refused": func() Config { return Config{Listen: busy.LocalAddr().String(), Listen6: "[::1]:0"} },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := saveState(dir, &savedState{ID: id, ID6: id6}); err != nil {
				t.Fatal(err)
			}
			c := cfg()
			c.StateDir = dir
			n, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			if n.Addr().Addr() != netip.IPv6Loopback() || n.Addr6().IsValid() {
				t.Fatalf("running on %v and %v, want IPv6 alone", n.Addr(), n.Addr6())
			}
			if n.ID() != id6 {
				t.Fatalf("ID %v, want the saved IPv6 ID %v (IPv4 %v)", n.ID(), id6, id)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := loadState(dir)
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != id || st.ID6 != id6 {
				t.Fatalf("saved IDs %v and %v, want %v and %v", st.ID, st.ID6, id, id6)
			}
		})
	}
}

// A Conn6 that takes IPv4 too (udp on [::], not IPv6-only) would serve
// IPv4 queriers from the IPv6 table beside the IPv4 socket: New refuses it.
func TestDualStackRejectsDualConn6(t *testing.T) {
	// A wildcard, on purpose: only a socket on [::] can take both
	// families. Port 0, closed by New at once; no packet is sent.
	pc, err := net.ListenPacket("udp", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	if ipv6Only(pc) {
		pc.Close()
		t.Skip("the host makes [::] sockets IPv6-only")
	}
	n, err := New(Config{Conn: listenLoopback(t, 174, 1), Conn6: pc})
	if err == nil {
		n.Close()
		t.Fatal("New took a dual-stack socket as the IPv6 one")
	}
	if _, werr := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv6loopback, Port: 9}); werr == nil {
		t.Fatal("New left the refused socket open")
	}
}

// A family retried after the other's lookup (see both) reports its times
// from the call's start, not from the retry's.
func TestBothRetryTimesFromStart(t *testing.T) {
	n4 := &Node{cache: newNodeCache(8, false)}
	n6 := &Node{cache: newNodeCache(8, false)}
	n4.cache.add(routing.Contact{ID: routing.RandomID(testRand()), Addr: netip.MustParseAddrPort("127.0.175.1:1")})
	const wait = 50 * time.Millisecond
	tries := 0
	s4, s6, _, e4, e6 := both(context.Background(), n4, n6, nil, func(p netip.AddrPort) netip.AddrPort { return p }, LookupStats.later,
		func(x *Node, ch chan<- netip.AddrPort) (LookupStats, error) {
			if x == n6 {
				// The other family's lookup takes a while; the
				// retry starts once it is over.
				<-time.After(wait)
				return LookupStats{Duration: wait}, nil
			}
			if tries++; tries == 1 {
				return LookupStats{}, ErrNoResponse
			}
			return LookupStats{FirstPeer: time.Millisecond, Duration: 2 * time.Millisecond, Peers: 1}, nil
		})
	if e4 != nil || e6 != nil || tries != 2 {
		t.Fatalf("errors %v, %v after %d tries", e4, e6, tries)
	}
	m := mergeStats(s4, s6, 1)
	if m.FirstPeer < wait+time.Millisecond || m.Duration < wait+2*time.Millisecond {
		t.Fatalf("first peer at %v, done at %v: measured from the retry, not the start (%v before it)", m.FirstPeer, m.Duration, wait)
	}
}

// A node running on one family keeps the saved ID and nodes of the other
// for the next run with both.
func TestOneFamilyKeepsTheOther(t *testing.T) {
	r := testRand()
	id, id6 := routing.RandomID(r), routing.RandomID(r)
	c4 := routing.Contact{ID: routing.RandomID(r), Addr: netip.MustParseAddrPort("198.51.100.7:6881")}
	c6 := routing.Contact{ID: routing.RandomID(r), Addr: netip.MustParseAddrPort("[2001:db8::7]:6881")}
	for name, conn := range map[string]func() net.PacketConn{
		"IPv6 alone": func() net.PacketConn { return listenLoopback6(t) },
		"IPv4 alone": func() net.PacketConn { return listenLoopback(t, 174, 1) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := saveState(dir, &savedState{ID: id, ID6: id6, Nodes: krpc.Nodes{c4}, Nodes6: krpc.Nodes6{c6}}); err != nil {
				t.Fatal(err)
			}
			n, err := New(Config{Conn: conn(), StateDir: dir, QueryTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := loadState(dir)
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != id || st.ID6 != id6 {
				t.Errorf("saved IDs %v and %v, want %v and %v", st.ID, st.ID6, id, id6)
			}
			// The node's own family is its table's (the saved node never
			// answered); the other is what it loaded.
			if n.Addr().Addr().Is4() && !slices.Contains(st.Nodes6, c6) || n.Addr().Addr().Is6() && !slices.Contains(st.Nodes, c4) {
				t.Errorf("saved nodes %v and %v, want the other family's saved one kept", st.Nodes, st.Nodes6)
			}
		})
	}
}
