package dht_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"node/internal/simnet"
	"node/internal/simnet/simdht"
)

// Among 10% closer liars (adversary.CloserLiar: every answer names
// fabricated nodes nearer the target than any real one, at the liars'
// addresses, and claims an ID near the target itself), every announce
// still reaches the honest nodes nearest the info-hash and every lookup
// still finds all 8 announced peers. The network is ideal (no delay, no
// loss, no silent address), so the outcome is the lookup's logic alone,
// never a timeout or a race. A lookup that takes a node's claims of
// nearness on their word stops among the liars, which answer at once
// and name only each other.
func TestLookupAmongCloserLiars(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := simdht.Build(ctx, simdht.Options{Impl: simdht.Ours, Nodes: 300, Seed: 5, Liars: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Net.SetIdeal(true)
	res, all := measureAll8(ctx, t, w, 6)
	if all != len(res.Lookups) {
		t.Fatalf("%d of %d lookups found all 8 real peers", all, len(res.Lookups))
	}
}

// Among 10% liars that form a ring (adversary.LiarRing: they name one
// another next to the target, and each answers under the ID it was
// named with, so no answer contradicts another), on a network of public
// addresses where honest nodes have BEP 42 IDs, every announce reaches
// honest nodes and every lookup finds all 8 announced peers: the ring's
// made-up IDs are not valid for its addresses, and the lookup ranks the
// valid ones first. Whether the liars hold a /24 each or share a few
// makes no difference. The network is ideal, as above, or, where it
// matters that the ring answers while honest nodes are slow or silent,
// the Internet model with 30% silent nodes. A lookup that ranks by
// distance alone stops among the ring every time.
func TestLookupAmongLiarRing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		subnets int
		ideal   bool
	}{{0, true}, {2, true}, {0, false}} {
		t.Run(fmt.Sprintf("liar-subnets=%d,ideal=%v", tc.subnets, tc.ideal), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			opt := simdht.Options{Impl: simdht.Ours, Nodes: 500, Seed: 7, Liars: 0.1, Ring: true, BEP42: true, LiarSubnets: tc.subnets}
			if !tc.ideal {
				opt.Model, opt.Silent = simnet.Internet(7), 0.3
			}
			w, err := simdht.Build(ctx, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.Net.SetIdeal(tc.ideal)
			res, all := measureAll8(ctx, t, w, 8)
			t.Logf("%d of %d lookups found all 8 real peers", all, len(res.Lookups))
			// With loss and silent nodes, a lost packet or a silent
			// storer can cost one lookup a peer, as without liars.
			if tc.ideal && all != len(res.Lookups) || 10*all < 9*len(res.Lookups) {
				t.Fatalf("%d of %d lookups found all 8 real peers", all, len(res.Lookups))
			}
		})
	}
}

// measureAll8 runs 32 lookups for 4 info-hashes announced by 8 nodes each
// and counts those that found all 8.
func measureAll8(ctx context.Context, t *testing.T, w *simdht.Network, seed uint64) (simdht.Result, int) {
	t.Helper()
	res := simdht.Measure(ctx, w, simdht.Workload{InfoHashes: 4, Announcers: 8, Lookups: 32, Concurrency: 8, Timeout: 30 * time.Second, Seed: seed})
	if res.AnnounceFails > 0 {
		t.Errorf("%d announces failed", res.AnnounceFails)
	}
	all := 0
	for _, l := range res.Lookups {
		if l.Err != nil {
			t.Errorf("lookup: %v", l.Err)
		}
		if l.Found == 8 {
			all++
		}
	}
	return res, all
}
