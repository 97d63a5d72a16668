package dht

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/routing"
)

// mixedNetwork is 30 of our nodes and 20 anacrolix servers on loopback,
// bootstrapped through each other.
type mixedNetwork struct {
	ours   []*Node
	theirs []*adht.Server
}

func newMixedNetwork(t *testing.T, ctx context.Context) *mixedNetwork {
	t.Helper()
	ours := startOurs(t, 11, 30, nil, nil)
	boot := func() []netip.AddrPort {
		return []netip.AddrPort{ours[0].Addr(), ours[1].Addr(), ours[2].Addr()}
	}
	theirs := startAnacrolix(t, 12, 20, boot)
	for _, s := range theirs {
		if _, err := s.BootstrapContext(ctx); err != nil {
			t.Fatalf("anacrolix bootstrap: %v", err)
		}
	}
	// Ours learn of anacrolix through a bootstrap address of theirs, and
	// through the queries anacrolix sent while bootstrapping.
	for i, n := range ours {
		n.seedMu.Lock()
		n.seeds = append(n.seeds, routing.Contact{Addr: anacrolixAddr(theirs[i%len(theirs)])})
		n.seedMu.Unlock()
	}
	bootstrapAll(t, ctx, ours)
	for _, s := range theirs {
		_, _ = s.BootstrapContext(ctx)
	}
	return &mixedNetwork{ours: ours, theirs: theirs}
}

func TestInteropAnacrolix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	net := newMixedNetwork(t, ctx)
	r := testRand()

	t.Run("announced through ours, found by anacrolix", func(t *testing.T) {
		ih := routing.RandomID(r)
		if _, err := net.ours[7].Announce(ctx, ih, 7001, nil); err != nil {
			t.Fatal(err)
		}
		want := netip.AddrPortFrom(net.ours[7].Addr().Addr(), 7001)
		a, err := net.theirs[13].AnnounceTraversal(ih)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		found := false
		for pv := range a.Peers {
			for _, p := range pv.Peers {
				ap, _ := netip.AddrFromSlice(p.IP)
				if netip.AddrPortFrom(ap.Unmap(), uint16(p.Port)) == want {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("anacrolix lookup did not find %v", want)
		}
	})

	t.Run("announced through anacrolix, found by ours", func(t *testing.T) {
		ih := routing.RandomID(r)
		a, err := net.theirs[4].AnnounceTraversal(ih, adht.AnnouncePeer(adht.AnnouncePeerOpts{Port: 7002}))
		if err != nil {
			t.Fatal(err)
		}
		for range a.Peers {
		}
		<-a.Finished()
		a.Close()
		want := netip.AddrPortFrom(anacrolixAddr(net.theirs[4]).Addr(), 7002)
		ch := make(chan netip.AddrPort, 8)
		var st LookupStats
		go func() {
			defer close(ch)
			st, err = net.ours[22].GetPeers(ctx, ih, ch)
		}()
		got := collect(ch)
		if err != nil {
			t.Fatal(err)
		}
		if !got[want] {
			t.Fatalf("our lookup found %v, want %v (stats %+v)", got, want, st)
		}
	})

	t.Run("find_node converges on the true K closest", func(t *testing.T) {
		var all []routing.ID
		for _, n := range net.ours {
			all = append(all, n.ID())
		}
		for _, s := range net.theirs {
			all = append(all, routing.ID(s.ID()))
		}
		for i := 0; i < 10; i++ {
			target := routing.RandomID(r)
			slices.SortFunc(all, func(a, b routing.ID) int {
				return a.Distance(target).Cmp(b.Distance(target))
			})
			from := net.ours[(i*7)%len(net.ours)]
			got, st, err := from.FindNode(ctx, target)
			if err != nil {
				t.Fatal(err)
			}
			var want []routing.ID
			for _, id := range all {
				if id != from.ID() { // a lookup never lists its own node
					want = append(want, id)
				}
			}
			want = want[:routing.K]
			var gotIDs []routing.ID
			for _, c := range got {
				gotIDs = append(gotIDs, c.ID)
			}
			if !slices.Equal(gotIDs, want) {
				t.Fatalf("target %v: got %v\nwant %v\n(stats %+v)", target, gotIDs, want, st)
			}
		}
	})
}
