package dht

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"node/internal/adversary"
	"node/krpc"
	"node/routing"
)

// One IP announcing an info-hash with 128 ports, each with its own valid
// token, used to push every honest peer of that swarm out of the store.
// Now it holds maxPeersPerSource places, and the honest peers are served.
func TestStoreFloodKeepsHonestPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := startNode(t, 40, 1, nil)
	r := rand.New(rand.NewPCG(40, 1))
	ih := routing.RandomID(r)

	const honest = 8
	want := map[netip.AddrPort]bool{}
	for i := 0; i < honest; i++ {
		c := newTestClient(t, r, 40, 10+i, false, false, 0)
		tok := c.getPeers(t, ctx, n, ih).Token
		if _, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(6881)}); err != nil {
			t.Fatal(err)
		}
		want[netip.AddrPortFrom(c.LocalAddr().Addr(), 6881)] = true
	}

	a, err := adversary.NewNode("127.0.40.200")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	id := routing.RandomID(r)
	tok, err := a.AnnounceToken(n.Addr(), id, ih, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ports := make([]int, DefaultMaxPeersPerInfoHash)
	for i := range ports {
		ports[i] = 10000 + i
	}
	if _, err := a.AnnouncePorts(n.Addr(), id, ih, tok, ports, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	asker := newTestClient(t, r, 40, 100, false, false, 0)
	got := asker.getPeers(t, ctx, n, ih).Values
	fromAttacker := 0
	for _, p := range got {
		if p.Addr() == a.Addr.Addr() {
			fromAttacker++
		}
		delete(want, p)
	}
	if len(want) > 0 {
		t.Fatalf("honest peers %v pushed out by one IP's %d ports (answer: %d values, %d the attacker's)",
			slices.Collect(maps.Keys(want)), len(ports), len(got), fromAttacker)
	}
	if fromAttacker > maxPeersPerSource {
		t.Fatalf("one IP holds %d places in the swarm, bound %d", fromAttacker, maxPeersPerSource)
	}
	// The source's places hold its latest ports: one that moved is found.
	if last := netip.AddrPortFrom(a.Addr.Addr(), uint16(ports[len(ports)-1])); !slices.Contains(got, last) {
		t.Fatalf("the source's last port %v is not served: %v", last, got)
	}
}

// One IP, with its own token, used to flush the store with a stream of
// new info-hashes. Now it makes at most maxInsertsPerSource new entries
// per minute; its re-announces are still taken, and other sources are not
// held back by it.
func TestStoreFloodInsertRate(t *testing.T) {
	clock := newFakeClock()
	n := startNode(t, 41, 1, func(c *Config) { c.Now = clock.Now })
	r := rand.New(rand.NewPCG(41, 1))

	a, err := adversary.NewNode("127.0.41.200")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	id := routing.RandomID(r)
	tok, err := a.AnnounceToken(n.Addr(), id, routing.RandomID(r), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ihs := make([]routing.ID, 3*maxInsertsPerSource)
	for i := range ihs {
		ihs[i] = routing.RandomID(r)
	}
	if _, err := a.AnnounceHashes(n.Addr(), id, ihs, tok, 6881, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if h, p := n.store.counts(); h != maxInsertsPerSource || p != maxInsertsPerSource {
		t.Fatalf("one IP stored %d info-hashes, %d peers in a minute, bound %d", h, p, maxInsertsPerSource)
	}
	// Re-announcing what is stored renews it, allowance or not.
	if _, err := a.AnnounceHashes(n.Addr(), id, ihs[:maxInsertsPerSource], tok, 6881, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other := newTestClient(t, r, 41, 10, false, false, 0)
	ih := routing.RandomID(r)
	otok := other.getPeers(t, ctx, n, ih).Token
	if _, err := other.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: otok, Port: intp(6881)}); err != nil {
		t.Fatal(err)
	}
	if h, _ := n.store.counts(); h != maxInsertsPerSource+1 {
		t.Fatalf("%d info-hashes after another source's announce, want %d", h, maxInsertsPerSource+1)
	}
	// A minute later the source has its allowance again.
	clock.Advance(time.Minute)
	if _, err := a.AnnounceHashes(n.Addr(), id, ihs[maxInsertsPerSource:], tok, 6881, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if h, _ := n.store.counts(); h != 2*maxInsertsPerSource+1 {
		t.Fatalf("%d info-hashes a minute later, want %d", h, 2*maxInsertsPerSource+1)
	}
}

// Every address of an IPv6 /64 is one source; the table of allowances
// stays bounded however many sources announce.
func TestPeerStoreSourceBounds(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newPeerStore(16, 128, time.Hour)
	ih := psHash(1)
	for i := 0; i < 20; i++ {
		s.add(ih, netip.MustParseAddrPort(fmt.Sprintf("[2001:db8:1:2::%x]:6881", i+1)), t0)
	}
	if got := len(s.get(ih, t0, 100)); got != maxPeersPerSource {
		t.Fatalf("one /64 holds %d peers of a swarm, bound %d", got, maxPeersPerSource)
	}
	s.add(ih, netip.MustParseAddrPort("[2001:db8:1:3::1]:6881"), t0)
	if got := len(s.get(ih, t0, 100)); got != maxPeersPerSource+1 {
		t.Fatalf("another /64 was not stored: %d peers", got)
	}
	for i := 0; i < 2*maxTrackedSources; i++ {
		s.add(psHash(i), netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 6881), t0)
	}
	if s.inserts.Len() > maxTrackedSources {
		t.Fatalf("%d sources tracked, bound %d", s.inserts.Len(), maxTrackedSources)
	}
}
