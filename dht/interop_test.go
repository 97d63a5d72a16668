package dht

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/krpc"
	"node/routing"
)

// mixedNetwork is 30 of our nodes and 20 anacrolix servers on loopback.
type mixedNetwork struct {
	ours   []*Node
	theirs []*adht.Server
}

// newMixedNetwork forms the network the way a real one forms: nodes of both
// implementations join in turn, each through the nodes already there, and
// then every node bootstraps twice more, as its periodic refreshes would.
// Anacrolix hands out only nodes that have answered its own queries, so
// after each round its servers ping their tables, as the TableMaintainer
// of a running anacrolix client does every minute; without that, a node
// that joined after a server's last lookup stays hidden behind it.
func newMixedNetwork(t *testing.T, ctx context.Context) *mixedNetwork {
	t.Helper()
	ours := startOurs(t, 11, 30, nil, nil)
	var theirs []*adht.Server
	known := func() []netip.AddrPort {
		// A few of each implementation, as a bootstrap list would have.
		out := []netip.AddrPort{ours[0].Addr(), ours[1].Addr()}
		for _, s := range theirs[:min(2, len(theirs))] {
			out = append(out, anacrolixAddr(s))
		}
		return out
	}
	for i, n := range ours {
		if i > 0 {
			if _, err := n.Bootstrap(ctx); err != nil {
				t.Fatalf("bootstrap %v: %v", n.Addr(), err)
			}
		}
		if i < 20 {
			s := startAnacrolix(t, 12, i+1, known)
			if _, err := s.BootstrapContext(ctx); err != nil {
				t.Fatalf("anacrolix bootstrap: %v", err)
			}
			theirs = append(theirs, s)
			n.seedMu.Lock()
			n.seeds = append(n.seeds, routing.Contact{Addr: anacrolixAddr(s)})
			n.seedMu.Unlock()
		}
	}
	for round := 0; round < 2; round++ {
		for i, n := range ours {
			_, _ = n.Bootstrap(ctx)
			if i < len(theirs) {
				_, _ = theirs[i].BootstrapContext(ctx)
			}
		}
		pingTables(theirs)
	}
	return &mixedNetwork{ours: ours, theirs: theirs}
}

// pingTables makes each anacrolix server ping every node in its table.
func pingTables(servers []*adht.Server) {
	var wg sync.WaitGroup
	for _, s := range servers {
		for _, ni := range s.Nodes() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.Ping(ni.Addr.UDP())
			}()
		}
	}
	wg.Wait()
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

	// anacrolix/dht v2.23.0 answers find_node with the nodes closest to
	// info_hash, not target (server.go, setReturnNodes), so our find_node
	// carries the target in both keys. Check the packet we send, and that
	// anacrolix then answers about the target.
	t.Run("find_node carries info_hash for anacrolix", func(t *testing.T) {
		raw := listenLoopback(t, 13, 1)
		defer raw.Close()
		n, err := New(Config{Conn: listenLoopback(t, 13, 2), Bootstrap: []string{raw.LocalAddr().String()}})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		defer lcancel()
		target := n.ID() // Bootstrap's first lookup is find_node for our own ID
		go n.Bootstrap(lctx)
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2048)
		k, _, err := raw.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		q, err := krpc.Parse(buf[:k])
		if err != nil {
			t.Fatal(err)
		}
		if q.Q != krpc.MethodFindNode || q.A.Target == nil || *q.A.Target != target ||
			q.A.InfoHash == nil || *q.A.InfoHash != target {
			t.Fatalf("find_node sent %+v, want target and info_hash %v", q.A, target)
		}
		lcancel()

		target[0] |= 0x80 // far from the zero ID, where the bug points
		rep, err := net.ours[5].tr.Query(ctx, anacrolixAddr(net.theirs[3]), krpc.MethodFindNode,
			&krpc.Args{ID: net.ours[5].ID(), Target: &target, InfoHash: &target})
		if err != nil {
			t.Fatal(err)
		}
		// It answers with its K closest good nodes, which may include some
		// from the other half when it knows fewer than K in the target's;
		// but an answer about the zero ID would have none in the target's
		// half although anacrolix knows some.
		known := false
		for _, ni := range net.theirs[3].Nodes() {
			known = known || routing.CommonPrefixLen(routing.ID(ni.ID), target) > 0
		}
		if len(rep.R.Nodes) == 0 {
			t.Fatal("anacrolix answered find_node with no nodes")
		}
		closest := slices.MinFunc(rep.R.Nodes, func(a, b krpc.NodeInfo) int {
			return a.ID.Distance(target).Cmp(b.ID.Distance(target))
		})
		if known && routing.CommonPrefixLen(closest.ID, target) == 0 {
			t.Fatalf("anacrolix answered about another target than %v: %v", target, rep.R.Nodes)
		}
	})

	// Kademlia finds the exact K closest except where they straddle a
	// subtree boundary: when the target's subtree holds fewer than K
	// nodes, the last of the K live in a sibling subtree, and every node
	// asked knows K closer ones to return first. Measured here at well
	// under 1 lookup in 400 (one CI run saw it: 7 of 8 found, the 8th two
	// bits from the target). So: every lookup finds at least K-1 of the
	// true K closest, and at most 1 of 20 misses one.
	t.Run("find_node converges on the true K closest", func(t *testing.T) {
		var all []routing.ID
		for _, n := range net.ours {
			all = append(all, n.ID())
		}
		for _, s := range net.theirs {
			all = append(all, routing.ID(s.ID()))
		}
		inexact := 0
		for i := 0; i < 20; i++ {
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
			if slices.Equal(gotIDs, want) {
				continue
			}
			inexact++
			found := 0
			for _, id := range want {
				if slices.Contains(gotIDs, id) {
					found++
				}
			}
			if found < routing.K-1 || inexact > 1 {
				t.Fatalf("target %v (inexact lookup %d): found %d of the true %d closest\ngot  %v\nwant %v\n(stats %+v)",
					target, inexact, found, routing.K, gotIDs, want, st)
			}
		}
	})
}
