package wire

import (
	"net/netip"
	"slices"
	"testing"
)

// BEP 6's example: the 7- and 9-piece allowed fast sets for a peer at
// 80.4.4.200 in a torrent of 1313 pieces with info-hash 0xaa × 20.
func TestAllowedFastSetBEP6Vector(t *testing.T) {
	var ih [20]byte
	for i := range ih {
		ih[i] = 0xaa
	}
	ip := netip.MustParseAddr("80.4.4.200")
	for _, tt := range []struct {
		k    int
		want []uint32
	}{
		{7, []uint32{1059, 431, 808, 1217, 287, 376, 1188}},
		{9, []uint32{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}},
	} {
		if got := AllowedFastSet(ip, ih, 1313, tt.k); !slices.Equal(got, tt.want) {
			t.Errorf("k=%d: got %v, want %v", tt.k, got, tt.want)
		}
	}
	// Only the /24 counts, and a mapped address is the IPv4 one.
	for _, other := range []string{"80.4.4.1", "::ffff:80.4.4.7"} {
		if got := AllowedFastSet(netip.MustParseAddr(other), ih, 1313, 7); got[0] != 1059 || got[6] != 1188 {
			t.Errorf("%s: got %v, want the set of 80.4.4.0/24", other, got)
		}
	}
	if got := AllowedFastSet(netip.MustParseAddr("80.4.5.200"), ih, 1313, 7); got[0] == 1059 && got[1] == 431 {
		t.Errorf("80.4.5.200 got the set of 80.4.4.0/24: %v", got)
	}
}

func TestAllowedFastSetEdges(t *testing.T) {
	var ih [20]byte
	v4, v6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8:1:2::5")
	if got := AllowedFastSet(v4, ih, 5, 10); !slices.Equal(got, []uint32{0, 1, 2, 3, 4}) {
		t.Errorf("k > pieces: got %v, want every piece", got)
	}
	for _, n := range []int{0, -1} {
		if got := AllowedFastSet(v4, ih, n, 10); got != nil {
			t.Errorf("%d pieces: got %v", n, got)
		}
	}
	if got := AllowedFastSet(netip.Addr{}, ih, 100, 10); got != nil {
		t.Errorf("invalid address: got %v", got)
	}
	// IPv6: the /48 decides.
	a := AllowedFastSet(v6, ih, 1000, 10)
	b := AllowedFastSet(netip.MustParseAddr("2001:db8:1:ffff::1"), ih, 1000, 10)
	c := AllowedFastSet(netip.MustParseAddr("2001:db8:2::1"), ih, 1000, 10)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Errorf("IPv6 sets: %v %v %v; want the first two equal, the third not", a, b, c)
	}
	checkAllowedSet(t, a, 1000, 10)
}

func checkAllowedSet(t *testing.T, set []uint32, n, k int) {
	t.Helper()
	if len(set) != min(n, k) {
		t.Fatalf("set %v: %d pieces, want %d", set, len(set), min(n, k))
	}
	seen := map[uint32]bool{}
	for _, p := range set {
		if int(p) >= n || seen[p] {
			t.Fatalf("set %v: %d out of range or repeated", set, p)
		}
		seen[p] = true
	}
}

func FuzzAllowedFastSet(f *testing.F) {
	f.Add([]byte{80, 4, 4, 200}, uint16(1313), uint8(9))
	f.Add(make([]byte, 16), uint16(11), uint8(10))
	f.Add([]byte{127, 0, 0, 1}, uint16(1), uint8(10))
	f.Fuzz(func(t *testing.T, ipb []byte, n uint16, k uint8) {
		ip, ok := netip.AddrFromSlice(ipb)
		if !ok {
			return
		}
		var ih [20]byte
		copy(ih[:], ipb)
		// k is kept to what we send (at most a quarter of the pieces, or
		// all of them), so that drawing the set stays quick.
		kk := int(k % 16)
		if int(n) > kk && kk > int(n)/4 {
			kk = int(n) / 4
		}
		set := AllowedFastSet(ip, ih, int(n), kk)
		if n == 0 || kk == 0 {
			if set != nil {
				t.Fatalf("got %v", set)
			}
			return
		}
		checkAllowedSet(t, set, int(n), kk)
	})
}
