package peer

import (
	"math/rand"
	"net/netip"
	"testing"
	"time"
)

// checkSources checks that every source's count is its candidates in the
// list, within maxAddrsPerSource.
func checkSources(t *testing.T, tor *Torrent, step int) {
	t.Helper()
	cnt := map[netip.Prefix]int{}
	for _, cd := range tor.known {
		if cd.src.IsValid() {
			cnt[cd.src]++
		}
	}
	for k, s := range tor.sources {
		if s.addrs != cnt[k] || s.addrs <= 0 || s.addrs > maxAddrsPerSource {
			t.Fatalf("step %d: source %v counts %d, has %d candidates (bound %d)", step, k, s.addrs, cnt[k], maxAddrsPerSource)
		}
	}
	for k, n := range cnt {
		if tor.sources[k] == nil {
			t.Fatalf("step %d: source %v missing, %d candidates", step, k, n)
		}
	}
}

// Whatever sources of every kind name, take over, fail to dial and drop,
// their counts stay those of their candidates, within the bound.
func TestSourceCountsMatchCandidates(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	now := time.Now()
	for i := range 100_000 {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(r.Intn(16)), byte(r.Intn(256))}), 6881)
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 2, 0, byte(r.Intn(8))}), 6881)
		switch r.Intn(12) {
		case 0:
			tor.addCandidateFrom(a, netip.AddrPort{}, fromUser, false, now)
		case 1, 2:
			tor.addCandidateFrom(a, src, fromDHT, false, now)
		case 3:
			tor.addCandidateFrom(a, src, fromTracker, false, now)
		case 4, 5:
			tor.addCandidateFrom(a, src, fromPex, r.Intn(2) == 0, now)
		case 6:
			tor.addCandidateFrom(a, src, fromHint, false, now)
		case 7, 8:
			tor.dialFailed(a, now)
		case 9:
			tor.dialStarted(a)
		case 10:
			tor.dialEnded(a)
		case 11:
			if r.Intn(10) == 0 {
				tor.selfDialled(a)
			} else if r.Intn(10) == 0 {
				tor.dropUnlisted()
			}
		}
		now = now.Add(time.Millisecond)
		if i%97 == 0 {
			checkSources(t, tor, i)
		}
	}
	checkSources(t, tor, -1)
}

// A DHT node (or tracker) that names a candidate a PEX peer named gives
// it its kind, but the candidate stays in the PEX peer's count: moved
// into the node's, it would be among those the node's next names
// replace, and a hostile node could so evict the candidates peers named.
func TestTakeoverKeepsSource(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pexPeer := netip.MustParseAddrPort("127.0.246.51:6881")
	dhtNode := netip.MustParseAddrPort("127.0.246.52:6881")
	honest := netip.MustParseAddrPort("127.0.246.53:6881")
	tor.addCandidateFrom(honest, pexPeer, fromPex, true, now)
	now = now.Add(time.Minute)
	tor.addCandidateFrom(honest, dhtNode, fromDHT, false, now)
	if cd := tor.known[honest]; cd == nil || cd.kind != fromDHT || cd.seed || cd.src != ipKey(pexPeer.Addr()) {
		t.Fatalf("after the takeover: %+v", cd)
	}
	// The node names its own, fails them all and names more: never the
	// taken-over one goes.
	for round := range 3 {
		for i := range maxAddrsPerSource {
			now = now.Add(time.Second)
			a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 6, byte(round), byte(i)}), 1)
			tor.addCandidateFrom(a, dhtNode, fromDHT, false, now)
			tor.dialFailed(a, now)
		}
	}
	if tor.known[honest] == nil {
		t.Errorf("a DHT node took over and evicted the PEX peer's candidate %v", honest)
	}
	// The user's word moves it out of every source's count.
	tor.addCandidateFrom(honest, netip.AddrPort{}, fromUser, false, now)
	if cd := tor.known[honest]; cd == nil || cd.kind != fromUser || cd.src.IsValid() || tor.sources[ipKey(pexPeer.Addr())] != nil {
		t.Errorf("after the user named it: %+v", cd)
	}
	checkSources(t, tor, 0)
}

// A source that floods the list with new names cannot keep refreshing a
// hundred untried addresses, which would rank ahead of every candidate
// that failed once: its new names get in only as its old ones are tried
// and fail.
func TestFloodingSourceCannotRefreshUntried(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	flooder := netip.MustParseAddrPort("127.0.246.61:6881")
	name := func(round, i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 7, byte(round), byte(i)}), 1)
	}
	for i := range maxAddrsPerSource {
		tor.addCandidateFrom(name(0, i), flooder, fromDHT, false, now)
	}
	full := tor.stats.sourceFull
	for i := range maxAddrsPerSource {
		tor.addCandidateFrom(name(1, i), flooder, fromDHT, false, now)
	}
	if n := tor.stats.sourceFull - full; n != maxAddrsPerSource {
		t.Errorf("%d of %d fresh names refused", n, maxAddrsPerSource)
	}
	for i := range maxAddrsPerSource {
		if tor.known[name(0, i)] == nil {
			t.Fatalf("untried candidate %v replaced", name(0, i))
		}
	}
	for i := range 10 {
		tor.dialFailed(name(0, i), now)
	}
	for i := range maxAddrsPerSource {
		tor.addCandidateFrom(name(2, i), flooder, fromDHT, false, now)
	}
	if tor.stats.sourceReplaced != 10 || tor.sources[ipKey(flooder.Addr())].addrs != maxAddrsPerSource {
		t.Errorf("%d replaced, want the 10 that failed; the source holds %d", tor.stats.sourceReplaced, tor.sources[ipKey(flooder.Addr())].addrs)
	}
}
