package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/internal/dhttest"
	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// listenLoopback6 binds UDP on [::1]:0, or skips the test on a host
// without IPv6 loopback.
func listenLoopback6(t testing.TB) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	return pc
}

// startDual starts count dual-stack nodes, on 127.0.<subnet>.1.. and
// [::1], each told of the first's two addresses.
func startDual(t testing.TB, subnet, count int, mod func(*Config)) []*Node {
	t.Helper()
	var nodes []*Node
	var boot []string
	for i := 0; i < count; i++ {
		cfg := Config{Conn: listenLoopback(t, subnet, i+1), Conn6: listenLoopback6(t), Bootstrap: boot, QueryTimeout: time.Second}
		if mod != nil {
			mod(&cfg)
		}
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if !n.Addr6().IsValid() {
			t.Fatal("no IPv6 socket")
		}
		nodes = append(nodes, n)
		if boot == nil {
			boot = []string{n.Addr().String(), n.Addr6().String()}
		}
	}
	return nodes
}

// startAnacrolix6 starts an anacrolix server on [::1].
func startAnacrolix6(t testing.TB, boot func() []netip.AddrPort) *adht.Server {
	t.Helper()
	cfg := adht.NewDefaultServerConfig()
	cfg.Conn = listenLoopback6(t)
	dhttest.Configure(cfg, boot)
	s, err := adht.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// A dual-stack node keeps each family in its own table, answers each
// socket's queriers with their own family, and BEP 32's want with either
// or both, K each at most; a lookup runs in both families and streams
// the peers of both.
func TestDualStackOurs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := startDual(t, 60, 12, nil)
	bootstrapAll(t, ctx, nodes)

	for _, n := range nodes {
		es4, err := n.entries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		es6, err := n.v6.Load().entries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es4 {
			if familyOf(e.Addr.Addr()) != fam4 {
				t.Fatalf("%v in the IPv4 table", e.Addr)
			}
		}
		for _, e := range es6 {
			if familyOf(e.Addr.Addr()) != fam6 {
				t.Fatalf("%v in the IPv6 table", e.Addr)
			}
		}
		if len(es4) == 0 || len(es6) == 0 {
			t.Fatalf("%v: %d IPv4 and %d IPv6 entries", n.Addr(), len(es4), len(es6))
		}
	}
	st, err := nodes[3].Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.V6 == nil || st.V6.Nodes == 0 || st.Nodes == 0 || st.V6.Addr != nodes[3].Addr6() {
		t.Fatalf("stats: %d IPv4 nodes, IPv6 %+v", st.Nodes, st.V6)
	}

	// want, asked of each socket.
	cl4 := newClient(t, listenLoopback(t, 60, 200))
	cl6 := newClient(t, listenLoopback6(t))
	target := routing.RandomID(testRand())
	for _, tc := range []struct {
		name   string
		cl     *krpc.Transport
		to     netip.AddrPort
		want   []string
		n4, n6 bool
	}{
		{"v4 no want", cl4, nodes[5].Addr(), nil, true, false},
		{"v6 no want", cl6, nodes[5].Addr6(), nil, false, true},
		{"v4 want n6", cl4, nodes[5].Addr(), []string{"n6"}, false, true},
		{"v6 want n4", cl6, nodes[5].Addr6(), []string{"n4"}, true, false},
		{"v4 want both", cl4, nodes[5].Addr(), []string{"n4", "n6"}, true, true},
		{"v6 want both", cl6, nodes[5].Addr6(), []string{"n6", "n4"}, true, true},
		{"v4 want junk", cl4, nodes[5].Addr(), []string{"n5", "xx"}, true, false},
	} {
		for _, m := range []string{krpc.MethodFindNode, krpc.MethodGetPeers} {
			r, err := tc.cl.Query(ctx, tc.to, m, &krpc.Args{ID: routing.RandomID(testRand()), Target: &target, InfoHash: &target, Want: tc.want})
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, m, err)
			}
			if (len(r.R.Nodes) > 0) != tc.n4 || (len(r.R.Nodes6) > 0) != tc.n6 || len(r.R.Nodes) > routing.K || len(r.R.Nodes6) > routing.K {
				t.Fatalf("%s %s: %d nodes, %d nodes6", tc.name, m, len(r.R.Nodes), len(r.R.Nodes6))
			}
		}
	}

	// Peers of both families, announced by dual-stack nodes, found by a
	// lookup of both.
	ih := routing.RandomID(testRand())
	as, err := nodes[2].Announce(ctx, ih, 7301, nil)
	if err != nil {
		t.Fatal(err)
	}
	if as.Announced <= routing.K/2 {
		t.Fatalf("announced to %d nodes", as.Announced)
	}
	peers := make(chan FoundPeer, 64)
	if _, err := nodes[9].GetPeersFrom(ctx, ih, peers); err != nil {
		t.Fatal(err)
	}
	close(peers)
	got := map[netip.AddrPort]int{}
	for p := range peers {
		got[p.Addr]++
	}
	want4 := netip.AddrPortFrom(nodes[2].Addr().Addr(), 7301)
	want6 := netip.AddrPortFrom(netip.IPv6Loopback(), 7301)
	if got[want4] != 1 || got[want6] != 1 || len(got) != 2 {
		t.Fatalf("found %v, want %v and %v once each", got, want4, want6)
	}
}

func newClient(t testing.TB, pc net.PacketConn) *krpc.Transport {
	t.Helper()
	cl, err := krpc.New(krpc.Config{Conn: pc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Our dual-stack nodes and anacrolix servers on IPv4 and on IPv6 form one
// network: ours find the peers anacrolix servers of either family
// announced, and anacrolix servers of either family find ours.
func TestDualStackInteropAnacrolix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ours := startDual(t, 62, 8, nil)
	known4 := func() []netip.AddrPort { return []netip.AddrPort{ours[0].Addr()} }
	known6 := func() []netip.AddrPort { return []netip.AddrPort{ours[0].Addr6()} }
	var theirs4, theirs6 []*adht.Server
	for i := 0; i < 6; i++ {
		theirs4 = append(theirs4, startAnacrolix(t, 63, i+1, known4))
		theirs6 = append(theirs6, startAnacrolix6(t, known6))
	}
	for _, n := range ours {
		n.seedMu.Lock()
		for i := range theirs4 {
			n.seeds = append(n.seeds, routing.Contact{Addr: anacrolixAddr(theirs4[i])}, routing.Contact{Addr: anacrolixAddr(theirs6[i])})
		}
		n.seedMu.Unlock()
		if h := n.v6.Load(); h != nil {
			h.seedMu.Lock()
			h.seeds = append(h.seeds, n.seedsCopy()...)
			h.seedMu.Unlock()
		}
	}
	all := append(append([]*adht.Server(nil), theirs4...), theirs6...)
	for round := 0; round < 2; round++ {
		for _, n := range ours {
			_, _ = n.Bootstrap(ctx)
		}
		for _, s := range all {
			_, _ = s.BootstrapContext(ctx)
		}
		pingTables(all)
	}

	t.Run("announced through anacrolix of each family, found by ours", func(t *testing.T) {
		ih := routing.RandomID(testRand())
		for i, s := range []*adht.Server{theirs4[1], theirs6[1]} {
			a, err := s.AnnounceTraversal(ih, adht.AnnouncePeer(adht.AnnouncePeerOpts{Port: 7401 + i}))
			if err != nil {
				t.Fatal(err)
			}
			for range a.Peers {
			}
			a.Close()
		}
		want := []netip.AddrPort{
			netip.AddrPortFrom(anacrolixAddr(theirs4[1]).Addr(), 7401),
			netip.AddrPortFrom(netip.IPv6Loopback(), 7402),
		}
		testutil.WaitFor(t, 20*time.Second, "ours to find both anacrolix announces", func() bool {
			peers := make(chan netip.AddrPort, 64)
			_, _ = ours[5].GetPeers(ctx, ih, peers)
			close(peers)
			got := collect(peers)
			return got[want[0]] && got[want[1]]
		})
	})

	t.Run("announced through ours, found by anacrolix of each family", func(t *testing.T) {
		ih := routing.RandomID(testRand())
		if _, err := ours[3].Announce(ctx, ih, 7501, nil); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			s    *adht.Server
			want netip.AddrPort
		}{
			{theirs4[4], netip.AddrPortFrom(ours[3].Addr().Addr(), 7501)},
			{theirs6[4], netip.AddrPortFrom(netip.IPv6Loopback(), 7501)},
		} {
			testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("anacrolix %v to find %v", anacrolixAddr(tc.s), tc.want), func() bool {
				a, err := tc.s.AnnounceTraversal(ih)
				if err != nil {
					return false
				}
				defer a.Close()
				found := false
				for pv := range a.Peers {
					for _, p := range pv.Peers {
						ap, _ := netip.AddrFromSlice(p.IP)
						found = found || netip.AddrPortFrom(ap.Unmap(), uint16(p.Port)) == tc.want
					}
				}
				return found
			})
		}
	})
}

// A dual-stack node saves both tables, each family in its key, and the
// IPv6 ID when it differs; a restart from the file starts warm in both
// families. A file of one family, as any node before dual-stack wrote,
// loads: its nodes go to the socket of their family, its ID to both, and
// the other family joins through BEP 32 want, asked of the first.
func TestDualStackState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := startDual(t, 66, 10, nil)
	bootstrapAll(t, ctx, nodes)

	dir := t.TempDir()
	n, err := New(Config{Conn: listenLoopback(t, 66, 100), Conn6: listenLoopback6(t), StateDir: dir,
		Bootstrap: []string{nodes[0].Addr().String(), nodes[0].Addr6().String()}, QueryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	id := n.ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != id || !st.ID6.IsZero() || len(st.Nodes) == 0 || len(st.Nodes6) == 0 {
		t.Fatalf("saved ID %v (want %v), ID6 %v, %d nodes, %d nodes6", st.ID, id, st.ID6, len(st.Nodes), len(st.Nodes6))
	}

	// Warm restart, no bootstrap list: both families from the file.
	n, err = New(Config{Conn: listenLoopback(t, 66, 101), Conn6: listenLoopback6(t), StateDir: dir, QueryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if n.ID() != id || n.ID6() != id {
		t.Fatalf("restarted with IDs %v and %v, want %v", n.ID(), n.ID6(), id)
	}
	if _, err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := n.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Nodes == 0 || s.V6.Nodes == 0 {
		t.Fatalf("warm restart: %d IPv4 nodes, %d IPv6", s.Nodes, s.V6.Nodes)
	}

	// Files of one family, and one with an IPv6 ID of its own.
	r := testRand()
	id6 := routing.RandomID(r)
	for _, tc := range []struct {
		name   string
		st     savedState
		want6  routing.ID
		v4, v6 bool
	}{
		{"IPv4 only", savedState{ID: id, Nodes: st.Nodes}, id, true, false},
		{"IPv6 only", savedState{ID: id, Nodes6: st.Nodes6}, id, false, true},
		{"own IPv6 ID", savedState{ID: id, ID6: id6, Nodes: st.Nodes, Nodes6: st.Nodes6}, id6, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := saveState(dir, &tc.st); err != nil {
				t.Fatal(err)
			}
			n, err := New(Config{Conn: listenLoopback(t, 66, 102), Conn6: listenLoopback6(t), StateDir: dir, QueryTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if n.ID() != id || n.ID6() != tc.want6 {
				t.Fatalf("IDs %v and %v, want %v and %v", n.ID(), n.ID6(), id, tc.want6)
			}
			seeds := func(h *Node) bool {
				for _, c := range h.seedsCopy() {
					if h.usable(c.Addr) {
						return true
					}
				}
				return false
			}
			if seeds(n) != tc.v4 || seeds(n.v6.Load()) != tc.v6 {
				t.Fatalf("seeds: IPv4 %v, IPv6 %v", seeds(n), seeds(n.v6.Load()))
			}
			if _, err := n.Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
			s, err := n.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Nodes == 0 || s.V6.Nodes == 0 {
				t.Fatalf("%d IPv4 nodes, %d IPv6", s.Nodes, s.V6.Nodes)
			}
		})
	}
}

// Either socket of a dual-stack node may fail to bind: the node warns and
// runs on the other; only when neither binds does New fail.
func TestDualStackOneSocketFails(t *testing.T) {
	busy := listenLoopback(t, 67, 1)
	defer busy.Close()
	busy6 := listenLoopback6(t)
	defer busy6.Close()
	n, err := New(Config{Listen: busy.LocalAddr().String(), Listen6: "[::1]:0"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Addr().Addr() != netip.IPv6Loopback() || n.Addr6().IsValid() {
		t.Fatalf("IPv4 taken: running on %v and %v", n.Addr(), n.Addr6())
	}
	n.Close()
	n, err = New(Config{Listen: "127.0.67.2:0", Listen6: busy6.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if n.Addr().Addr() != netip.MustParseAddr("127.0.67.2") || n.Addr6().IsValid() {
		t.Fatalf("IPv6 taken: running on %v and %v", n.Addr(), n.Addr6())
	}
	n.Close()
	if _, err := New(Config{Listen: busy.LocalAddr().String(), Listen6: busy6.LocalAddr().String()}); err == nil {
		t.Fatal("New succeeded with neither socket")
	}
	if _, err := New(Config{Conn: listenLoopback6(t), Conn6: listenLoopback6(t)}); err == nil {
		t.Fatal("New took an IPv6 socket for the IPv4 one")
	}
}

// Each socket of a dual-stack node has its own BEP 42 tally: IPv4 voters
// set the IPv4 socket's ID, IPv6 voters the IPv6 one's, and a vote of one
// family never moves the other's. Votes reach the right socket through
// ReportExternalIP as peers' yourip would.
func TestDualStackVotesPerFamily(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	n, err := New(Config{Conn: listenLoopback(t, 68, 1), Conn6: listenLoopback6(t), Now: clock, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a4, a6 := netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("2001:db8:5::1")
	for i := range 8 {
		n.ReportExternalIP(netip.AddrFrom4([4]byte{9, byte(i), 0, 1}), a4)
		n.ReportExternalIP(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 9, byte(i), 15: 1}), a6)
		// Cross-family claims, which no socket counts.
		n.ReportExternalIP(netip.AddrFrom4([4]byte{8, byte(i), 0, 1}), a6)
		n.ReportExternalIP(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 8, byte(i), 15: 1}), a4)
	}
	testutil.WaitFor(t, 10*time.Second, "both tallies to hold their votes", func() bool {
		s, err := n.Stats(context.Background())
		return err == nil && s.Voters == 8 && s.V6.Voters == 8
	})
	mu.Lock()
	now = now.Add(ipSustain + time.Second)
	mu.Unlock()
	testutil.WaitFor(t, 10*time.Second, "each socket's ID to follow its family's address", func() bool {
		return routing.IDMatchesIP(n.ID(), a4) && routing.IDMatchesIP(n.ID6(), a6)
	})
	s, err := n.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.External != a4 || s.V6.External != a6 {
		t.Fatalf("external %v and %v", s.External, s.V6.External)
	}
}

// A node that knows an entry point of one family only joins the other
// through BEP 32 want: its very first lookup, before any bootstrap, finds
// the peers of both families.
func TestDualStackJoinThroughOneFamily(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := startDual(t, 69, 10, nil)
	bootstrapAll(t, ctx, nodes)
	ih := routing.RandomID(testRand())
	if _, err := nodes[3].Announce(ctx, ih, 7601, nil); err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.AddrPortFrom(nodes[3].Addr().Addr(), 7601), netip.AddrPortFrom(netip.IPv6Loopback(), 7601)}
	for _, tc := range []struct {
		name string
		boot netip.AddrPort
	}{{"IPv6 entry", nodes[5].Addr6()}, {"IPv4 entry", nodes[5].Addr()}} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(Config{Conn: listenLoopback(t, 69, 100), Conn6: listenLoopback6(t), Bootstrap: []string{tc.boot.String()}, QueryTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			peers := make(chan netip.AddrPort, 64)
			st, err := n.GetPeers(ctx, ih, peers)
			if err != nil {
				t.Fatal(err)
			}
			close(peers)
			got := collect(peers)
			if !got[want[0]] || !got[want[1]] || st.Peers != len(got) {
				t.Fatalf("found %v (%d counted), want %v", got, st.Peers, want)
			}
		})
	}
}
