package peer

import (
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// fakePeers returns n distinct identities; no sockets are involved.
func fakePeers(n int) []*conn {
	cs := make([]*conn, n)
	for i := range cs {
		cs[i] = new(conn)
	}
	return cs
}

func sameSet(got, want []*conn) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// checkInvariants verifies what chooseUnchoked promises for any input.
func checkInvariants(t *testing.T, peers []chokeCandidate, seeding bool, slots int, opt *conn, got []*conn) {
	t.Helper()
	byConn := map[*conn]chokeCandidate{}
	interested := 0
	for _, p := range peers {
		byConn[p.c] = p
		if p.interested {
			interested++
		}
	}
	seen := map[*conn]bool{}
	for _, c := range got {
		if seen[c] {
			t.Fatalf("%p returned twice", c)
		}
		seen[c] = true
		if !byConn[c].interested {
			t.Fatalf("unchoked a peer that is not interested")
		}
	}
	if want := min(max(slots, 1), interested); len(got) != want {
		t.Fatalf("%d unchoked, want %d", len(got), want)
	}
	if p, ok := byConn[opt]; ok && p.interested && !seen[opt] {
		t.Fatalf("the optimistic peer is choked")
	}
	rate := func(p chokeCandidate) float64 {
		if seeding {
			return p.up
		}
		return p.down
	}
	// No choked interested peer is faster than the slowest of the
	// regular slots-1.
	var in []float64
	for _, c := range got {
		if c != opt {
			in = append(in, rate(byConn[c]))
		}
	}
	slices.Sort(in)
	slices.Reverse(in)
	if len(in) > max(slots, 1)-1 {
		in = in[:max(slots, 1)-1]
	}
	if len(in) > 0 {
		floor := in[len(in)-1]
		for _, p := range peers {
			if p.interested && !seen[p.c] && rate(p) > floor && len(in) == max(slots, 1)-1 {
				t.Fatalf("choked a peer at %v while unchoking one at %v", rate(p), floor)
			}
		}
	}
}

func TestChooseUnchokedDownloadingPrefersFastestUploaders(t *testing.T) {
	c := fakePeers(7)
	peers := []chokeCandidate{
		{c: c[0], interested: true, down: 100, up: 9000},
		{c: c[1], interested: true, down: 500},
		{c: c[2], interested: false, down: 99999}, // fast but wants nothing
		{c: c[3], interested: true, down: 300},
		{c: c[4], interested: true, down: 400},
		{c: c[5], interested: true, down: 0},
		{c: c[6], interested: true, down: 200},
	}
	got := chooseUnchoked(peers, false, 4, c[5])
	// Regular: 500, 400, 300; optimistic: c[5].
	if want := []*conn{c[1], c[4], c[3], c[5]}; !sameSet(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	checkInvariants(t, peers, false, 4, c[5], got)

	// No optimistic peer: its slot goes to the next fastest.
	got = chooseUnchoked(peers, false, 4, nil)
	if want := []*conn{c[1], c[4], c[3], c[6]}; !sameSet(got, want) {
		t.Fatalf("without optimistic: got %v, want %v", got, want)
	}
	// The optimistic peer is among the fastest: the next fastest gets
	// the extra slot, never the slow c[5].
	got = chooseUnchoked(peers, false, 4, c[4])
	if want := []*conn{c[1], c[4], c[3], c[6]}; !sameSet(got, want) {
		t.Fatalf("optimistic among the fastest: got %v, want %v", got, want)
	}
	// An optimistic peer that is not interested does not get a slot.
	got = chooseUnchoked(peers, false, 4, c[2])
	if slices.Contains(got, c[2]) || len(got) != 4 {
		t.Fatalf("uninterested optimistic: got %v", got)
	}
}

func TestChooseUnchokedSeedingPrefersFastestDownloaders(t *testing.T) {
	c := fakePeers(6)
	peers := []chokeCandidate{
		{c: c[0], interested: true, up: 10, down: 1e9}, // uploads to us: irrelevant when seeding
		{c: c[1], interested: true, up: 700},
		{c: c[2], interested: true, up: 600},
		{c: c[3], interested: true, up: 50},
		{c: c[4], interested: true, up: 800},
		{c: c[5], interested: true, up: 0, isNew: true},
	}
	got := chooseUnchoked(peers, true, 4, c[5])
	if want := []*conn{c[4], c[1], c[2], c[5]}; !sameSet(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	checkInvariants(t, peers, true, 4, c[5], got)
}

func TestChooseUnchokedFewPeersAndSlots(t *testing.T) {
	c := fakePeers(3)
	peers := []chokeCandidate{
		{c: c[0], interested: true},
		{c: c[1], interested: true},
		{c: c[2]},
	}
	// Fewer interested peers than slots: all of them.
	if got := chooseUnchoked(peers, false, 4, nil); !sameSet(got, []*conn{c[0], c[1]}) {
		t.Fatalf("got %v", got)
	}
	// One slot is the optimistic one alone.
	if got := chooseUnchoked(peers, false, 1, c[1]); !sameSet(got, []*conn{c[1]}) {
		t.Fatalf("one slot: got %v", got)
	}
	if got := chooseUnchoked(peers, false, 0, nil); len(got) != 1 {
		t.Fatalf("slots 0 counts as 1: got %v", got)
	}
	if got := chooseUnchoked(nil, true, 4, c[0]); len(got) != 0 {
		t.Fatalf("no peers: got %v", got)
	}
}

// Equal rates: the peers already unchoked keep their slots (no churn),
// and otherwise the input order decides.
func TestChooseUnchokedTiesKeepUnchoked(t *testing.T) {
	c := fakePeers(6)
	peers := []chokeCandidate{
		{c: c[0], interested: true},
		{c: c[1], interested: true},
		{c: c[2], interested: true, unchoked: true},
		{c: c[3], interested: true},
		{c: c[4], interested: true, unchoked: true},
		{c: c[5], interested: true},
	}
	got := chooseUnchoked(peers, false, 3, nil)
	if want := []*conn{c[2], c[4], c[0]}; !sameSet(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A faster peer does displace them.
	peers[5].down = 1
	got = chooseUnchoked(peers, false, 3, nil)
	if want := []*conn{c[5], c[2], c[4]}; !sameSet(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Random inputs: the invariants hold whatever the rates and states.
func TestChooseUnchokedInvariantsRandom(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		n := rng.IntN(12)
		c := fakePeers(n)
		peers := make([]chokeCandidate, n)
		for j := range peers {
			peers[j] = chokeCandidate{
				c: c[j], interested: rng.IntN(3) > 0, unchoked: rng.IntN(2) == 0,
				down: float64(rng.IntN(5) * 1000), up: float64(rng.IntN(5) * 1000),
			}
		}
		var opt *conn
		if n > 0 && rng.IntN(4) > 0 {
			opt = c[rng.IntN(n)]
		}
		seeding := rng.IntN(2) == 0
		slots := rng.IntN(6)
		got := chooseUnchoked(peers, seeding, slots, opt)
		checkInvariants(t, peers, seeding, slots, opt, got)
		if again := chooseUnchoked(peers, seeding, slots, opt); !slices.Equal(got, again) {
			t.Fatal("not deterministic")
		}
	}
}

func TestPickOptimistic(t *testing.T) {
	c := fakePeers(5)
	peers := []chokeCandidate{
		{c: c[0], interested: true, unchoked: true}, // already unchoked
		{c: c[1], interested: false},                // wants nothing
		{c: c[2], interested: true},
		{c: c[3], interested: true, isNew: true},
		{c: c[4], interested: true},
	}
	rng := mrand.New(mrand.NewPCG(3, 4))
	counts := map[*conn]int{}
	const rounds = 50000
	for range rounds {
		counts[pickOptimistic(peers, rng)]++
	}
	if counts[c[0]]+counts[c[1]]+counts[nil] != 0 {
		t.Fatalf("picked an unchoked or uninterested peer: %v", counts)
	}
	// Weights 1, 3, 1 out of 5: a new peer is 3 times as likely.
	ratio := float64(counts[c[3]]) / float64(counts[c[2]]+counts[c[4]]) * 2
	if ratio < 2.7 || ratio > 3.3 {
		t.Fatalf("a new peer is %.2f times as likely, want 3: %v", ratio, counts)
	}
	if p := pickOptimistic(peers[:2], rng); p != nil {
		t.Fatalf("nobody to pick, got %p", p)
	}
}
