package peer

import (
	"net/netip"
	"testing"
	"time"
)

// A candidate's address may be no more local than the source that named
// it; the user's own peers are trusted; nobody sends us to port 0 or to
// an address no peer can have.
func TestCandidateAddressClass(t *testing.T) {
	public := netip.MustParseAddr("203.0.113.7")
	private := netip.MustParseAddr("192.168.1.5")
	loop := netip.MustParseAddr("127.0.0.1")
	user := netip.Addr{}
	cases := []struct {
		cand string
		src  netip.Addr
		ok   bool
	}{
		{"198.51.100.1:6881", public, true},
		{"127.0.0.1:6881", public, false},
		{"127.5.6.7:6881", public, false},
		{"10.1.2.3:6881", public, false},
		{"172.16.0.9:6881", public, false},
		{"192.168.0.1:6881", public, false},
		{"100.64.1.1:6881", public, false},
		{"169.254.1.1:6881", public, false},
		{"224.0.0.1:6881", public, false},
		{"255.255.255.255:6881", public, false},
		{"0.0.0.0:6881", public, false},
		{"198.51.100.1:0", public, false},
		{"[::1]:6881", public, false},
		{"[fc00::1]:6881", public, false},
		{"[fe80::1]:6881", public, false},
		{"[ff02::1]:6881", public, false},
		{"[::ffff:10.0.0.1]:6881", public, false},
		{"[2001:db8::1]:6881", public, true},

		{"10.1.2.3:6881", private, true},
		{"198.51.100.1:6881", private, true},
		{"127.0.0.1:6881", private, false},
		{"224.0.0.1:6881", private, false},

		{"127.0.0.1:6881", loop, true},
		{"10.1.2.3:6881", loop, true},
		{"127.0.0.1:0", loop, false},
		{"224.0.0.1:6881", loop, false},

		{"127.0.0.1:6881", user, true},
		{"192.168.0.1:6881", user, true},
		{"127.0.0.1:0", user, false},
		{"[ff02::1]:6881", user, false},
	}
	for _, tc := range cases {
		if got := allowedFrom(netip.MustParseAddrPort(tc.cand), tc.src); got != tc.ok {
			t.Errorf("%s from %v: allowed %v, want %v", tc.cand, tc.src, got, tc.ok)
		}
	}

	// The same rule where candidates come in.
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	from := netip.AddrPortFrom(public, 6881)
	for _, a := range []string{"127.0.0.1:6881", "10.0.0.1:6881", "192.168.1.1:6881", "224.0.0.1:6881", "198.51.100.1:0"} {
		tor.addCandidate(netip.MustParseAddrPort(a), from, time.Now())
	}
	if len(tor.known) != 0 {
		t.Fatalf("a public source added %v", tor.known)
	}
}

// One source adds at most maxAddrsPerSource candidates; a full list makes
// room for a new source's; candidates that keep failing are dropped.
func TestCandidateSourceBounds(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cand := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 6881)
	}
	src := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 2, 0, byte(i)}), 6881)
	}
	for i := range 3 * maxAddrsPerSource {
		tor.addCandidate(cand(i), src(0), now)
	}
	// Another port on the same address is the same source.
	tor.addCandidate(cand(5000), netip.AddrPortFrom(src(0).Addr(), 1), now)
	if len(tor.known) != maxAddrsPerSource {
		t.Fatalf("one source added %d candidates, bound is %d", len(tor.known), maxAddrsPerSource)
	}

	// Fill the list from many sources, then a new one still gets in.
	k := 0
	for s := 1; len(tor.known) < maxKnownAddrs; s++ {
		for range maxAddrsPerSource {
			k++
			tor.addCandidate(cand(1000+k), src(s), now)
		}
	}
	fresh := netip.MustParseAddrPort("127.3.0.1:6881")
	tor.addCandidate(fresh, src(200), now)
	if tor.known[fresh] == nil || len(tor.known) > maxKnownAddrs {
		t.Fatalf("full list: fresh candidate kept %v, %d candidates (bound %d)", tor.known[fresh] != nil, len(tor.known), maxKnownAddrs)
	}
	// The user's peers are dialled before the DHT's, and a source whose
	// candidates failed comes after one whose did not.
	user := netip.MustParseAddrPort("127.4.0.1:6881")
	tor.addCandidate(user, netip.AddrPort{}, now)
	failing := ipKey(src(3).Addr())
	for a, cd := range tor.known {
		if cd.src == failing {
			tor.dialFailed(a, now.Add(-time.Hour))
			break
		}
	}
	best := tor.dialable(now, maxKnownAddrs)
	if best[0] != user {
		t.Fatalf("dial order starts with %v, want %v", best[0], user)
	}
	// Among the untried, the failing source's come last.
	seen := false
	for _, a := range best {
		cd := tor.known[a]
		if cd.failures > 0 {
			break
		}
		if cd.src == failing {
			seen = true
		} else if seen {
			t.Fatalf("%v (another source) dialled after the failing source's", a)
		}
	}
	if !seen {
		t.Fatal("the failing source's other candidates are not among those to dial")
	}

	// maxDialFailures failures drop a candidate, and its source's count
	// (fresh was its source's only one).
	for range maxDialFailures {
		tor.dialFailed(fresh, now)
	}
	if tor.known[fresh] != nil || tor.sources[ipKey(src(200).Addr())] != nil {
		t.Fatal("a candidate that kept failing was kept")
	}
}
