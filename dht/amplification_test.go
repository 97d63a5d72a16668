package dht

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// Under an amplification bound a get_peers answer with many stored peers
// stays within the allowance: values alone, at most maxBoundedValues; a
// scrape gets its filters alone. Without the bound nothing is trimmed.
func TestAnswersStaySmallUnderAmplificationBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, bound := range []int{0, 4} {
		n, err := New(Config{Conn: listenLoopback(t, 24, 1+bound), MaxAmplification: bound})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		ih := routing.RandomID(testRand())
		for i := 0; i < 60; i++ {
			n.store.add(ih, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), 6881), time.Now())
		}
		cl, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 24, 10+bound)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		// Give the node a table, so that nodes could be sent.
		if _, err := cl.Query(ctx, n.Addr(), krpc.MethodPing, &krpc.Args{ID: routing.RandomID(testRand())}); err != nil {
			t.Fatal(err)
		}
		r, err := cl.Query(ctx, n.Addr(), krpc.MethodGetPeers, &krpc.Args{ID: routing.ID{1}, InfoHash: &ih})
		if err != nil {
			t.Fatalf("bound %d: %v", bound, err)
		}
		size := r.Append(nil)
		switch {
		case bound == 0 && len(r.R.Values) != DefaultMaxValues:
			t.Fatalf("unbounded: %d values, want %d", len(r.R.Values), DefaultMaxValues)
		case bound > 0 && (len(r.R.Values) != maxBoundedValues || len(r.R.Nodes) != 0 || len(size) > krpc.AmplificationAllowance):
			t.Fatalf("bounded: %d values, %d nodes, %d bytes", len(r.R.Values), len(r.R.Nodes), len(size))
		}
		r, err = cl.Query(ctx, n.Addr(), krpc.MethodGetPeers, &krpc.Args{ID: routing.ID{1}, InfoHash: &ih, Scrape: 1})
		if err != nil {
			t.Fatalf("bound %d, scrape: %v", bound, err)
		}
		if r.R.BFpe == nil || (bound > 0 && len(r.R.Values) != 0) {
			t.Fatalf("bound %d, scrape: filters %v, %d values", bound, r.R.BFpe != nil, len(r.R.Values))
		}
	}
}

// A node holding many info-hashes answers BEP 51 under the production
// limits, beside a full list of nodes of its family, and the answer is
// within the allowance: the transport would drop a bigger one unsent.
func TestSampleInfohashesFitsAmplificationBound(t *testing.T) {
	for _, fam := range []struct{ name, ip string }{{"ipv4", "127.0.39.1"}, {"ipv6", "::1"}} {
		t.Run(fam.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			pc, err := net.ListenPacket("udp", net.JoinHostPort(fam.ip, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", fam.name, err)
			}
			n, err := New(publicLimits(Config{Conn: pc, QueryTimeout: 2 * time.Second}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			r := rand.New(rand.NewPCG(39, 1))
			const hashes = 100
			for i := 0; i < hashes; i++ {
				n.store.add(routing.RandomID(r), netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, 0, byte(i)}), 6881), time.Now())
			}
			// K nodes that answer pings, so the answer carries a full list.
			for i := 0; i < routing.K; i++ {
				ip := fam.ip
				if fam.name == "ipv4" {
					ip = fmt.Sprintf("127.0.39.%d", 10+i)
				}
				an, err := adversary.NewNode(ip)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { an.Close() })
				id := routing.RandomID(r)
				an.Serve(func(*krpc.Msg, netip.AddrPort) *krpc.Msg { return &krpc.Msg{R: &krpc.Return{ID: id}} })
				if _, err := n.Ping(ctx, an.Addr); err != nil {
					t.Fatal(err)
				}
			}
			testutil.WaitFor(t, 5*time.Second, "a full table", func() bool {
				es, err := n.Entries(ctx)
				return err == nil && len(es) == routing.K
			})

			crawler, err := adversary.NewNode(fam.ip)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { crawler.Close() })
			before := n.tr.Stats()
			target := routing.RandomID(r)
			if err := crawler.Query(n.Addr(), "sa", krpc.MethodSampleInfohashes, &krpc.Args{ID: routing.RandomID(r), Target: &target}); err != nil {
				t.Fatal(err)
			}
			var m krpc.Msg
			for m.T != "sa" {
				if m, _, err = crawler.Recv(5 * time.Second); err != nil {
					t.Fatalf("no answer to sample_infohashes (amplification drops: %d): %v",
						n.tr.Stats().Amplification-before.Amplification, err)
				}
			}
			if m.R == nil {
				t.Fatalf("answer %+v", m)
			}
			b := m.Append(nil)
			nodes := len(m.R.Nodes) + len(m.R.Nodes6)
			t.Logf("%d bytes: %d samples, %d nodes", len(b), len(m.R.Samples), nodes)
			if len(b) > krpc.AmplificationAllowance {
				t.Fatalf("answer of %d bytes, allowance %d", len(b), krpc.AmplificationAllowance)
			}
			if m.R.Num != hashes || nodes != routing.K || len(m.R.Samples) < routing.K {
				t.Fatalf("num %d, %d nodes, %d samples", m.R.Num, nodes, len(m.R.Samples))
			}
			// The answer uses the room there is: one more sample would not fit.
			if len(b)+routing.IDLen <= krpc.AmplificationAllowance {
				t.Fatalf("answer of %d bytes leaves room for another sample", len(b))
			}
		})
	}
}
