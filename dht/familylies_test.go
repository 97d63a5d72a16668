package dht

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"node/internal/adversary"
	"node/krpc"
	"node/routing"
)

// quiet asserts that nothing reached pc: it is an address a liar named,
// which we must never have been made to query. The lookups that could
// have queried it have ended, so whatever they sent is already there.
func quiet(t *testing.T, pc net.PacketConn, what string) {
	t.Helper()
	_ = pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 2048)
	if n, from, err := pc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: got %d bytes from %v (%v)", what, n, from, err)
	}
}

func cached(n *Node, addr netip.AddrPort) bool {
	for _, c := range n.cache.closest(routing.ID{}, 1<<16) {
		if c.Addr == addr {
			return true
		}
	}
	return false
}

// Nodes that lie about address families (BEP 32): a nodes6 of the wrong
// length, an IPv6 record in nodes, IPv4-mapped addresses in nodes6, nodes6
// nobody asked for. Malformed answers are dropped whole and counted
// (Transport.Malformed); well-formed contacts of a family the socket does
// not carry, unasked, are dropped and counted (ForeignNodes); a mapped
// address never becomes an IPv4 contact. Nothing named is ever queried,
// and the lookups end.
func TestFamilyLiars(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sentinel4 := listenLoopback(t, 64, 9)
	defer sentinel4.Close()
	sentinel6 := listenLoopback6(t)
	defer sentinel6.Close()
	s4 := localAddr(sentinel4)
	s6 := localAddr(sentinel6)
	r := testRand()
	named6 := []routing.Contact{{ID: routing.RandomID(r), Addr: s6}}
	named4 := []routing.Contact{{ID: routing.RandomID(r), Addr: s4}}

	liar := func(ip string, lie adversary.FamilyLie, cs []routing.Contact) netip.AddrPort {
		a, err := adversary.NewNode(ip)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		a.ServeRaw(adversary.FamilyLiar(routing.RandomID(r), lie, cs))
		return a.Addr
	}
	garbage := liar("127.0.64.2", adversary.Nodes6Garbage, named6)
	v6InNodes := liar("127.0.64.3", adversary.V6InNodes, named6)
	unasked := liar("127.0.64.4", adversary.UnaskedNodes6, named6)
	mapped := liar("127.0.64.5", adversary.MappedNodes6, named4)
	mapped6 := liar("::1", adversary.MappedNodes6, named4)

	// A node of one family asks no one for nodes6.
	n4, err := New(Config{Conn: listenLoopback(t, 64, 1), QueryTimeout: 300 * time.Millisecond,
		Bootstrap: []string{garbage.String(), v6InNodes.String(), unasked.String(), mapped.String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer n4.Close()
	for range 3 {
		if _, _, err := n4.FindNode(ctx, routing.RandomID(r)); err != nil && !errors.Is(err, ErrNoResponse) {
			t.Fatal(err)
		}
		if _, err := n4.GetPeers(ctx, routing.RandomID(r), nil); err != nil && !errors.Is(err, ErrNoResponse) {
			t.Fatal(err)
		}
	}
	st, err := n4.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Transport.Malformed < 2 || st.ForeignNodes == 0 {
		t.Fatalf("IPv4 node: %d malformed, %d foreign nodes", st.Transport.Malformed, st.ForeignNodes)
	}
	if cached(n4, s4) || cached(n4, s6) {
		t.Fatal("a lied-about contact is in the IPv4 node's cache")
	}

	// A dual-stack node whose IPv6 table is empty asks its IPv4 queries
	// for nodes6 too; mapped ones still never become contacts, of either
	// family, and an IPv6 liar's mapped nodes6 reach neither socket.
	d, err := New(Config{Conn: listenLoopback(t, 64, 6), Conn6: listenLoopback6(t), QueryTimeout: 300 * time.Millisecond,
		Bootstrap: []string{mapped.String(), mapped6.String(), garbage.String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 3 {
		if _, err := d.GetPeers(ctx, routing.RandomID(r), nil); err != nil && !errors.Is(err, ErrNoResponse) {
			t.Fatal(err)
		}
	}
	if cached(d, s4) || cached(d.v6.Load(), s4) {
		t.Fatal("a mapped nodes6 contact became a contact")
	}
	ds, err := d.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Transport.Malformed == 0 || ds.V6 == nil || ds.V6.Transport.ResponsesIn == 0 {
		t.Fatalf("dual node: %d malformed, IPv6 %+v", ds.Transport.Malformed, ds.V6)
	}
	quiet(t, sentinel4, "the IPv4 address liars named")
	quiet(t, sentinel6, "the IPv6 address liars named")
}

// A querier that asks for both families, over and over (a want list of
// hundreds of entries) and with the longest transaction IDs, gets at most
// K nodes of each family, and under the production amplification bound
// an answer within krpc.AmplificationAllowance: the node trims the other
// family's nodes itself, so the transport never has to drop an answer as
// too big (Transport.Amplification stays 0). Bytes out per query stay
// within that same allowance.
func TestWantBothBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := startDual(t, 65, 24, func(c *Config) { c.MaxAmplification = krpc.DefaultMaxAmplification })
	bootstrapAll(t, ctx, nodes)
	n := nodes[0]
	ih := routing.RandomID(testRand())
	for i := range 30 { // peers of both families to serve
		n.store.add(ih, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}), 6881), time.Now())
		n.store.add(ih, netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 9, 15: byte(i)}), 6881), time.Now())
	}
	var in, out, answers, biggest int
	for _, fam := range []struct {
		ip string
		to netip.AddrPort
	}{{"127.0.65.200", n.Addr()}, {"::1", n.Addr6()}} {
		q, err := adversary.NewNode(fam.ip)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		r := testRand()
		for i := range 40 {
			target := routing.RandomID(r)
			if i%2 == 0 {
				target = ih
			}
			want := 1
			if i%4 == 3 {
				want = 1 + i*10
			}
			a := adversary.WantFlood(routing.RandomID(r), target, want)
			tid := "aa"
			if i%3 == 0 {
				tid = string(make([]byte, krpc.MaxTransactionIDLen)) // the longest answer
			}
			for _, m := range []string{krpc.MethodFindNode, krpc.MethodGetPeers, krpc.MethodSampleInfohashes} {
				msg := &krpc.Msg{T: tid, Y: krpc.KindQuery, Q: m, A: a}
				b := msg.Append(nil)
				if err := q.SendRaw(fam.to, b); err != nil {
					t.Fatal(err)
				}
				// Our querier is pinged to be verified: skip its queries.
				var resp krpc.Msg
				var k int
				for resp.R == nil {
					buf := make([]byte, 64<<10)
					_ = q.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
					var err error
					if k, _, err = q.Conn.ReadFromUDPAddrPort(buf); err != nil {
						st, _ := n.Stats(ctx)
						t.Fatalf("%s from %s, want ×%d: %v (%+v)", m, fam.ip, want, err, st.Transport)
					}
					if resp, err = krpc.Parse(buf[:k]); err != nil || (resp.Y != krpc.KindQuery && resp.R == nil) {
						t.Fatalf("%s: %v %+v", m, err, resp)
					}
				}
				if k > max(krpc.DefaultMaxAmplification*len(b), krpc.AmplificationAllowance) {
					t.Fatalf("%s from %s: %d bytes for a %d-byte query", m, fam.ip, k, len(b))
				}
				if len(resp.R.Nodes) > routing.K || len(resp.R.Nodes6) > routing.K {
					t.Fatalf("%s: %d nodes, %d nodes6", m, len(resp.R.Nodes), len(resp.R.Nodes6))
				}
				if m == krpc.MethodFindNode && (len(resp.R.Nodes) == 0 || len(resp.R.Nodes6) == 0) {
					t.Fatalf("find_node wanting both: %d nodes, %d nodes6", len(resp.R.Nodes), len(resp.R.Nodes6))
				}
				in += len(b)
				out += k
				biggest = max(biggest, k)
				answers++
			}
		}
	}
	st, err := n.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Transport.Amplification != 0 || st.V6.Transport.Amplification != 0 {
		t.Fatalf("answers dropped as too big: IPv4 %d, IPv6 %d", st.Transport.Amplification, st.V6.Transport.Amplification)
	}
	if out > answers*krpc.AmplificationAllowance && out > krpc.DefaultMaxAmplification*in {
		t.Fatalf("%d bytes out for %d in, %d answers", out, in, answers)
	}
	t.Logf("%d answers: %d bytes in, %d out (%.2f×), the biggest %d bytes", answers, in, out, float64(out)/float64(in), biggest)
}
