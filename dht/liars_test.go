package dht_test

import (
	"context"
	"testing"
	"time"

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
	res := simdht.Measure(ctx, w, simdht.Workload{InfoHashes: 4, Announcers: 8, Lookups: 32, Concurrency: 8, Timeout: 30 * time.Second, Seed: 6})
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
	if all != len(res.Lookups) {
		t.Fatalf("%d of %d lookups found all 8 real peers", all, len(res.Lookups))
	}
}
