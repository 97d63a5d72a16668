package dht

import (
	"context"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// bep33VectorIPs are the IPs of BEP 33's test vector
// (https://www.bittorrent.org/beps/bep_0033.html, "Test vectors"):
// 192.0.2.0 to 192.0.2.255 and 2001:DB8:: to 2001:DB8::3E7, inclusive.
func bep33VectorIPs() []netip.Addr {
	var ips []netip.Addr
	for i := 0; i <= 0xff; i++ {
		ips = append(ips, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	base := netip.MustParseAddr("2001:db8::").As16()
	for i := 0; i <= 0x3e7; i++ {
		b := base
		b[14], b[15] = byte(i>>8), byte(i)
		ips = append(ips, netip.AddrFrom16(b))
	}
	return ips
}

func TestBloomEstimate(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name string
		ips  []netip.Addr
		want float64
		tol  float64
	}{
		{"empty", nil, 0, 0},
		// BEP 33 gives this filter's estimate as 1224.9308.
		{"BEP 33 test vector", bep33VectorIPs(), 1224.9308, 0.0001},
		// One IP sets two bits (or one, if both indexes collide), so the
		// estimate is about 1; adding it again changes nothing.
		{"one IP", []netip.Addr{v4}, 1, 0.01},
		{"duplicate", []netip.Addr{v4, v4}, 1, 0.01},
		// A mapped address is the same host: hashed as its 4 bytes.
		{"IPv4-mapped", []netip.Addr{v4, netip.AddrFrom16(v4.As16())}, 1, 0.01},
		{"invalid address is skipped", []netip.Addr{{}}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f krpc.Bloom
			for _, ip := range tc.ips {
				bloomInsert(&f, ip)
			}
			if got := BloomEstimate(&f); math.Abs(got-tc.want) > tc.tol {
				t.Fatalf("estimate %.6f, want %.4f ± %g", got, tc.want, tc.tol)
			}
		})
	}

	// A full filter cannot say how full: the estimate saturates at the
	// largest size it can tell apart instead of becoming +Inf.
	var full krpc.Bloom
	for i := range full {
		full[i] = 0xff
	}
	if got := BloomEstimate(&full); math.IsInf(got, 0) || math.IsNaN(got) || got < 7000 {
		t.Fatalf("full filter estimate %v, want a large finite number", got)
	}
	if got := BloomEstimate(nil); got != 0 {
		t.Fatalf("nil filter estimate %v", got)
	}
}

// The BEP's reference code sets bit index%8 of byte index/8, counting from
// the least significant bit. The bit count alone (and so the vector's
// estimate) cannot see the bit order, so this pins it: the filter of the
// vector begins with these bytes.
func TestBloomBitOrder(t *testing.T) {
	var f krpc.Bloom
	for _, ip := range bep33VectorIPs() {
		bloomInsert(&f, ip)
	}
	if want := []byte{0xf6, 0xc3, 0xf5, 0xea, 0xa0, 0x7f, 0xfd, 0x91}; !slices.Equal(f[:8], want) {
		t.Fatalf("filter starts % x, want % x", f[:8], want)
	}
}

// BFsd and BFpe are exactly 256 bytes on the wire; anything else makes the
// whole message malformed rather than a filter of some other size.
func TestBloomWire(t *testing.T) {
	id20 := "abcdefghij0123456789"
	for _, n := range []int{0, 255, 257, 512} {
		b := "d1:rd4:BFsd" + bs(string(make([]byte, n))) + "2:id20:" + id20 + "e1:t2:aa1:y1:re"
		if _, err := krpc.Parse([]byte(b)); err == nil {
			t.Errorf("BFsd of %d bytes parsed", n)
		}
	}
	if _, err := krpc.Parse([]byte("d1:rd4:BFpei5e2:id20:" + id20 + "e1:t2:aa1:y1:re")); err == nil {
		t.Error("integer BFpe parsed")
	}
	var f krpc.Bloom
	f[0], f[255] = 0x01, 0x80
	in := krpc.Msg{T: "aa", Y: krpc.KindResponse, R: &krpc.Return{ID: routing.ID([]byte(id20)), BFsd: &f, BFpe: new(krpc.Bloom)}}
	b := in.Append(nil)
	out, err := krpc.Parse(b)
	if err != nil {
		t.Fatalf("Parse(%q): %v", b, err)
	}
	if out.R.BFsd == nil || *out.R.BFsd != f || out.R.BFpe == nil || *out.R.BFpe != (krpc.Bloom{}) {
		t.Fatalf("round trip: BFsd %v BFpe %v", out.R.BFsd, out.R.BFpe)
	}
}

// A peer's latest announce decides whether it counts as a seed.
func TestPeerStoreSeedFlag(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newPeerStore(4, 4, time.Hour)
	ih, p := psHash(1), psPeer(1)
	s.addPeer(ih, p, false, t0)
	s.addPeer(ih, p, true, t0.Add(time.Minute))
	seeds, peers := s.scrape(ih, t0.Add(time.Minute))
	if math.Round(BloomEstimate(seeds)) != 1 || BloomEstimate(peers) != 0 {
		t.Fatalf("after announcing as a seed: seeds %.2f, peers %.2f", BloomEstimate(seeds), BloomEstimate(peers))
	}
	if got := s.peers(ih, t0, 10, true); len(got) != 0 {
		t.Fatalf("noseed returned the seed: %v", got)
	}
	// Expired peers count for nothing.
	seeds, peers = s.scrape(ih, t0.Add(3*time.Hour))
	if BloomEstimate(seeds) != 0 || BloomEstimate(peers) != 0 {
		t.Fatal("expired peer still in the scrape")
	}
}

func TestScrape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := startNode(t, 36, 1, nil)
	r := rand.New(rand.NewPCG(36, 1))
	ih := routing.RandomID(r)

	// Three seeds and five leechers, each from its own IP: the filters
	// count IPs, not ports.
	const seeds, leechers = 3, 5
	var wantLeechers []netip.AddrPort
	for i := 0; i < seeds+leechers; i++ {
		c := newTestClient(t, r, 36, 10+i, false, false, 0)
		tok := c.getPeers(t, ctx, n, ih).Token
		seed := 0
		if i < seeds {
			seed = 1
		} else {
			wantLeechers = append(wantLeechers, netip.AddrPortFrom(c.LocalAddr().Addr(), 6881))
		}
		if _, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(6881), Seed: seed}); err != nil {
			t.Fatalf("announce %d: %v", i, err)
		}
	}
	asker := newTestClient(t, r, 36, 100, false, false, 0)

	t.Run("scrape", func(t *testing.T) {
		resp, err := asker.query(ctx, n, krpc.MethodGetPeers, &krpc.Args{InfoHash: &ih, Scrape: 1})
		if err != nil {
			t.Fatal(err)
		}
		ret := resp.R
		if ret.BFsd == nil || ret.BFpe == nil {
			t.Fatalf("scrape answer without filters: BFsd %v, BFpe %v", ret.BFsd, ret.BFpe)
		}
		// At this fill the estimator is off by far less than one half.
		if got := BloomEstimate(ret.BFsd); math.Round(got) != seeds {
			t.Errorf("seeds estimate %.3f, want ≈ %d", got, seeds)
		}
		if got := BloomEstimate(ret.BFpe); math.Round(got) != leechers {
			t.Errorf("leechers estimate %.3f, want ≈ %d", got, leechers)
		}
		if len(ret.Values) != seeds+leechers {
			t.Errorf("%d values, want all %d peers", len(ret.Values), seeds+leechers)
		}
		if ret.Token == "" {
			t.Error("scrape answer without a token")
		}
	})

	t.Run("noseed", func(t *testing.T) {
		resp, err := asker.query(ctx, n, krpc.MethodGetPeers, &krpc.Args{InfoHash: &ih, NoSeed: 1})
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Clone([]netip.AddrPort(resp.R.Values))
		slices.SortFunc(got, netip.AddrPort.Compare)
		if !slices.Equal(got, wantLeechers) {
			t.Fatalf("noseed values %v, want the leechers %v", got, wantLeechers)
		}
		if resp.R.BFsd != nil || resp.R.BFpe != nil {
			t.Fatal("filters sent without scrape=1")
		}
	})

	t.Run("unknown info-hash", func(t *testing.T) {
		other := routing.RandomID(r)
		resp, err := asker.query(ctx, n, krpc.MethodGetPeers, &krpc.Args{InfoHash: &other, Scrape: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Empty filters, still sent: the asker can tell "none here" from
		// "this node does not scrape".
		if resp.R.BFsd == nil || BloomEstimate(resp.R.BFsd) != 0 || resp.R.BFpe == nil || BloomEstimate(resp.R.BFpe) != 0 {
			t.Fatalf("filters for an unknown hash: %v %v", resp.R.BFsd, resp.R.BFpe)
		}
	})

	t.Run("scrape without info_hash", func(t *testing.T) {
		_, err := asker.query(ctx, n, krpc.MethodGetPeers, &krpc.Args{Scrape: 1})
		wantCode(t, err, krpc.ErrorCodeProtocol)
	})
}
