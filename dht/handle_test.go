package dht

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// startNode starts one Node on 127.0.<subnet>.<host> with short timeouts.
func startNode(t *testing.T, subnet, host int, mod func(*Config)) *Node {
	t.Helper()
	cfg := Config{Conn: listenLoopback(t, subnet, host), QueryTimeout: 300 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// testClient is a raw KRPC endpoint that talks to a Node over a real socket.
type testClient struct {
	*krpc.Transport
	id routing.ID
}

// newTestClient starts a Transport on 127.0.<subnet>.<host>. With answer
// set it answers pings and find_node (so a node that verifies it, with
// either, can add it); readOnly
// flags its queries ro=1. Its queries time out after timeout (0: 2 s).
func newTestClient(t *testing.T, r *rand.Rand, subnet, host int, answer, readOnly bool, timeout time.Duration) *testClient {
	t.Helper()
	c := &testClient{id: routing.RandomID(r)}
	var h krpc.Handler
	if answer {
		h = func(_ netip.AddrPort, q *krpc.Msg) *krpc.Msg {
			if q.Q != krpc.MethodPing && q.Q != krpc.MethodFindNode {
				return &krpc.Msg{E: &krpc.Error{Code: krpc.ErrorCodeMethodUnknown, Msg: "only ping and find_node"}}
			}
			return &krpc.Msg{R: &krpc.Return{ID: c.id}}
		}
	}
	tr, err := krpc.New(krpc.Config{
		Conn:     listenLoopback(t, subnet, host),
		Handler:  h,
		Timeout:  timeout,
		ReadOnly: readOnly,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	c.Transport = tr
	return c
}

func (c *testClient) query(ctx context.Context, n *Node, method string, a *krpc.Args) (*krpc.Msg, error) {
	if a == nil {
		a = &krpc.Args{}
	}
	a.ID = c.id
	return c.Query(ctx, n.Addr(), method, a)
}

// wantCode fails unless err is a KRPC error with this code.
func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var ke *krpc.Error
	if !errors.As(err, &ke) {
		t.Fatalf("got error %v, want KRPC error %d", err, code)
	}
	if ke.Code != code {
		t.Fatalf("got KRPC error %d (%q), want %d", ke.Code, ke.Msg, code)
	}
}

func (c *testClient) getPeers(t *testing.T, ctx context.Context, n *Node, ih routing.ID) *krpc.Return {
	t.Helper()
	r, err := c.query(ctx, n, krpc.MethodGetPeers, &krpc.Args{InfoHash: &ih})
	if err != nil {
		t.Fatalf("get_peers: %v", err)
	}
	return r.R
}

// nearest is the K contacts of es nearest to target, nearest first.
func nearest(es []routing.Entry, target routing.ID) []routing.Contact {
	var all []routing.Contact
	for _, e := range es {
		all = append(all, e.Contact)
	}
	slices.SortFunc(all, func(a, b routing.Contact) int {
		return a.ID.Distance(target).Cmp(b.ID.Distance(target))
	})
	return all[:min(routing.K, len(all))]
}

func intp(i int) *int { return &i }

func TestHandlePing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := startNode(t, 30, 1, nil)
	c := newTestClient(t, rand.New(rand.NewPCG(30, 1)), 30, 2, false, false, 0)
	r, err := c.query(ctx, n, krpc.MethodPing, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Y != krpc.KindResponse || r.R == nil || r.R.ID != n.ID() {
		t.Fatalf("ping answer %+v, want r.id = %v", r, n.ID())
	}
	if r.IP == nil || r.IP.AddrPort() != c.LocalAddr() {
		t.Fatalf("ip = %v, want the client's address %v (BEP 42)", r.IP, c.LocalAddr())
	}
	if r.V != Version {
		t.Errorf("v = %q, want %q", r.V, Version)
	}
}

func TestHandleFindNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nodes := startOurs(t, 31, 12, nil, nil)
	bootstrapAll(t, ctx, nodes)
	n := nodes[0]
	r := rand.New(rand.NewPCG(31, 1))
	c := newTestClient(t, r, 31, 100, false, false, 0)

	_, err := c.query(ctx, n, krpc.MethodFindNode, nil)
	wantCode(t, err, krpc.ErrorCodeProtocol)

	es, err := n.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) < routing.K {
		t.Fatalf("table of %d nodes after bootstrap; need %d for this test", len(es), routing.K)
	}
	for i := 0; i < 5; i++ {
		target := routing.RandomID(r)
		before, err := n.Entries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.query(ctx, n, krpc.MethodFindNode, &krpc.Args{Target: &target})
		if err != nil {
			t.Fatal(err)
		}
		got := resp.R.Nodes
		if len(got) == 0 || len(got) > routing.K {
			t.Fatalf("find_node returned %d nodes, want 1..%d", len(got), routing.K)
		}
		if len(resp.R.Nodes6) != 0 {
			t.Fatalf("IPv6 nodes from an IPv4-only table: %v", resp.R.Nodes6)
		}
		// They must be the nearest of the table, nearest first. The table
		// may change while we ask (a late ping answer), so either its state
		// before or after the query will do.
		after, err := n.Entries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := nearest(before, target)
		if !slices.Equal([]routing.Contact(got), want) && !slices.Equal([]routing.Contact(got), nearest(after, target)) {
			t.Fatalf("find_node %v:\n got %v\nwant %v", target, got, want)
		}
	}

	// An empty table answers with no nodes, not an error.
	lone := startNode(t, 31, 101, nil)
	target := routing.RandomID(r)
	resp, err := c.query(ctx, lone, krpc.MethodFindNode, &krpc.Args{Target: &target})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.R.Nodes) != 0 || resp.R.ID != lone.ID() {
		t.Fatalf("lone node answered %+v", resp.R)
	}
}

func TestHandleGetPeersAndAnnounce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	n := startNode(t, 30, 1, nil)
	r := rand.New(rand.NewPCG(30, 2))
	c := newTestClient(t, r, 30, 2, false, false, 0)
	other := newTestClient(t, r, 30, 3, false, false, 0)
	clientIP := c.LocalAddr().Addr()

	storedPeers := func() int {
		t.Helper()
		s, err := n.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Peers
	}

	t.Run("get_peers", func(t *testing.T) {
		_, err := c.query(ctx, n, krpc.MethodGetPeers, nil)
		wantCode(t, err, krpc.ErrorCodeProtocol)
		ih := routing.RandomID(r)
		ret := c.getPeers(t, ctx, n, ih)
		if len(ret.Token) != 8 {
			t.Fatalf("token of %d bytes, want 8", len(ret.Token))
		}
		if len(ret.Values) != 0 {
			t.Fatalf("values for an unknown hash: %v", ret.Values)
		}
		if ret.ID != n.ID() {
			t.Fatalf("r.id %v, want %v", ret.ID, n.ID())
		}
	})

	t.Run("missing info_hash", func(t *testing.T) {
		tok := c.getPeers(t, ctx, n, routing.RandomID(r)).Token
		_, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{Token: tok, Port: intp(6881)})
		wantCode(t, err, krpc.ErrorCodeProtocol)
	})

	t.Run("bad token", func(t *testing.T) {
		ih := routing.RandomID(r)
		good := c.getPeers(t, ctx, n, ih).Token
		for _, tok := range []string{"", "12345678", good[:7], good + "x", string(flip(good))} {
			_, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(6881)})
			wantCode(t, err, krpc.ErrorCodeProtocol)
		}
		if v := c.getPeers(t, ctx, n, ih).Values; len(v) != 0 {
			t.Fatalf("peers stored despite bad tokens: %v", v)
		}
	})

	t.Run("valid token", func(t *testing.T) {
		ih := routing.RandomID(r)
		before := storedPeers()
		tok := c.getPeers(t, ctx, n, ih).Token
		resp, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(6881)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.R.ID != n.ID() {
			t.Fatalf("announce answer r.id %v", resp.R.ID)
		}
		want := []netip.AddrPort{netip.AddrPortFrom(clientIP, 6881)}
		if got := c.getPeers(t, ctx, n, ih).Values; !slices.Equal([]netip.AddrPort(got), want) {
			t.Fatalf("get_peers values %v, want %v", got, want)
		}
		// Another asker sees the same, and announcing twice stores one peer.
		if _, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(6881)}); err != nil {
			t.Fatal(err)
		}
		if got := other.getPeers(t, ctx, n, ih).Values; !slices.Equal([]netip.AddrPort(got), want) {
			t.Fatalf("get_peers values %v, want %v", got, want)
		}
		if got := storedPeers(); got != before+1 {
			t.Fatalf("store holds %d peers, want %d", got, before+1)
		}
	})

	t.Run("implied_port", func(t *testing.T) {
		ih := routing.RandomID(r)
		tok := c.getPeers(t, ctx, n, ih).Token
		// implied_port wins over an explicit port.
		if _, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(1234), ImpliedPort: 1}); err != nil {
			t.Fatal(err)
		}
		want := []netip.AddrPort{c.LocalAddr()}
		if got := c.getPeers(t, ctx, n, ih).Values; !slices.Equal([]netip.AddrPort(got), want) {
			t.Fatalf("get_peers values %v, want the UDP source %v", got, want)
		}
		ih2 := routing.RandomID(r)
		if _, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih2, Token: tok, ImpliedPort: 1}); err != nil {
			t.Fatal(err)
		}
		if got := c.getPeers(t, ctx, n, ih2).Values; !slices.Equal([]netip.AddrPort(got), want) {
			t.Fatalf("get_peers values %v, want the UDP source %v", got, want)
		}
		// BEP 5: "If it is present and non-zero, the port argument should
		// be ignored and the source port of the UDP packet should be used".
		ih3 := routing.RandomID(r)
		if _, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih3, Token: tok, Port: intp(1234), ImpliedPort: 2}); err != nil {
			t.Fatalf("implied_port=2: %v", err)
		}
		if got := c.getPeers(t, ctx, n, ih3).Values; !slices.Equal([]netip.AddrPort(got), want) {
			t.Fatalf("implied_port=2: get_peers values %v, want the UDP source %v", got, want)
		}
	})

	t.Run("bad port", func(t *testing.T) {
		ih := routing.RandomID(r)
		tok := c.getPeers(t, ctx, n, ih).Token
		for _, p := range []*int{nil, intp(0), intp(-1), intp(65536), intp(70000)} {
			_, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: p})
			wantCode(t, err, krpc.ErrorCodeProtocol)
		}
		if v := c.getPeers(t, ctx, n, ih).Values; len(v) != 0 {
			t.Fatalf("peers stored despite bad ports: %v", v)
		}
	})

	t.Run("token from another IP", func(t *testing.T) {
		ih := routing.RandomID(r)
		tok := c.getPeers(t, ctx, n, ih).Token
		_, err := other.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(6881)})
		wantCode(t, err, krpc.ErrorCodeProtocol)
		if v := c.getPeers(t, ctx, n, ih).Values; len(v) != 0 {
			t.Fatalf("peer stored with a stolen token: %v", v)
		}
		// The same token works from its own IP (so the 203 was about the IP).
		if _, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(6881)}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unknown method", func(t *testing.T) {
		_, err := c.query(ctx, n, "vote", nil)
		wantCode(t, err, krpc.ErrorCodeMethodUnknown)
	})
}

func flip(s string) []byte {
	b := []byte(s)
	if len(b) > 0 {
		b[0] ^= 0xff
	}
	return b
}

func TestHandleReadOnlyNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(30, 3))

	t.Run("answers nothing", func(t *testing.T) {
		ro := startNode(t, 30, 4, func(c *Config) { c.ReadOnly = true })
		c := newTestClient(t, r, 30, 5, false, false, 300*time.Millisecond)
		for _, m := range []string{krpc.MethodPing, krpc.MethodFindNode, "vote"} {
			target := routing.RandomID(r)
			_, err := c.query(ctx, ro, m, &krpc.Args{Target: &target})
			if !errors.Is(err, krpc.ErrTimeout) {
				t.Fatalf("%s to a read-only node: %v, want a timeout", m, err)
			}
		}
		s, err := ro.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Transport.QueriesIn != 3 || s.Transport.PacketsOut != 0 {
			t.Fatalf("read-only node: %d queries in, %d packets out; want 3 and 0", s.Transport.QueriesIn, s.Transport.PacketsOut)
		}
		if s.Nodes != 0 {
			t.Fatalf("read-only node added a querier: %d nodes", s.Nodes)
		}
	})

	t.Run("flags its queries ro=1", func(t *testing.T) {
		raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 30, 6)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		ro := startNode(t, 30, 7, func(c *Config) {
			c.ReadOnly = true
			c.Bootstrap = []string{raw.LocalAddr().String()}
		})
		done := make(chan error, 1)
		go func() {
			_, err := ro.Bootstrap(ctx)
			done <- err
		}()
		buf := make([]byte, 2048)
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		nb, from, err := raw.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		m, err := krpc.Parse(buf[:nb])
		if err != nil {
			t.Fatalf("parse %q: %v", buf[:nb], err)
		}
		if from != ro.Addr() || m.Y != krpc.KindQuery || m.Q != krpc.MethodFindNode || m.A.ID != ro.ID() {
			t.Fatalf("got %+v from %v, want find_node from %v", m, from, ro.Addr())
		}
		if m.RO != 1 || !m.ReadOnly() {
			t.Fatalf("read-only node's query has ro=%d, want 1: %q", m.RO, buf[:nb])
		}
		if err := <-done; !errors.Is(err, ErrNoResponse) {
			t.Fatalf("bootstrap towards a silent socket: %v, want ErrNoResponse", err)
		}
	})

	t.Run("ordinary node's queries carry no ro", func(t *testing.T) {
		raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 30, 8)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		n := startNode(t, 30, 9, func(c *Config) { c.Bootstrap = []string{raw.LocalAddr().String()} })
		done := make(chan error, 1)
		go func() {
			_, err := n.Bootstrap(ctx)
			done <- err
		}()
		buf := make([]byte, 2048)
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		nb, _, err := raw.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		m, err := krpc.Parse(buf[:nb])
		if err != nil {
			t.Fatal(err)
		}
		if m.RO != 0 {
			t.Fatalf("ordinary node sent ro=%d", m.RO)
		}
		<-done
	})
}

func TestHandleReadOnlyQuerierNotAdded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(30, 4))
	// The verification pings must not time out on a loaded machine.
	n := startNode(t, 30, 10, func(c *Config) { c.QueryTimeout = 2 * time.Second })
	ro := newTestClient(t, r, 30, 11, true, true, 0)
	normal := newTestClient(t, r, 30, 12, true, false, 0)

	ih := routing.RandomID(r)
	for _, m := range []string{krpc.MethodPing, krpc.MethodFindNode, krpc.MethodGetPeers} {
		resp, err := ro.query(ctx, n, m, &krpc.Args{Target: &ih, InfoHash: &ih})
		if err != nil {
			t.Fatalf("%s from a read-only querier: %v (it must still be answered)", m, err)
		}
		if resp.R.ID != n.ID() {
			t.Fatalf("%s: r.id %v", m, resp.R.ID)
		}
	}
	if _, err := normal.query(ctx, n, krpc.MethodPing, nil); err != nil {
		t.Fatal(err)
	}

	// The node pings the normal querier, which answers, and adds it.
	var es []routing.Entry
	for deadline := time.Now().Add(5 * time.Second); ; {
		var err error
		es, err = n.Entries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(es, func(e routing.Entry) bool { return e.ID == normal.id }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("normal querier not added after its ping; entries %v", es)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(es) != 1 || es[0].Addr != normal.LocalAddr() {
		t.Fatalf("entries %v, want only the normal querier at %v", es, normal.LocalAddr())
	}
	if q := normal.Stats().QueriesIn; q == 0 {
		t.Fatal("the normal querier was added without being pinged")
	}
	if q := ro.Stats().QueriesIn; q != 0 {
		t.Fatalf("the node sent %d queries to a read-only querier", q)
	}
}
