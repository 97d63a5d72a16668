package simdht

import (
	"context"
	"testing"
	"time"

	"node/internal/simnet"
)

// In a 300-node network of ours with the Internet model (100 ms median
// round trip, 1% loss), 30% silent addresses and churn, lookups find the
// peers that 8 nodes announced.
func TestOursFindPeers(t *testing.T) {
	t.Parallel()
	testFindPeers(t, Ours)
}

// The same network of anacrolix servers: the harness drives them too.
func TestAnacrolixFindPeers(t *testing.T) {
	t.Parallel()
	testFindPeers(t, Anacrolix)
}

func testFindPeers(t *testing.T, impl Impl) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := Build(ctx, Options{
		Impl: impl, Nodes: 300, Seed: 1, Model: simnet.Internet(1), Silent: 0.3, Churn: DefaultChurn,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	res := Measure(ctx, w, Workload{InfoHashes: 4, Announcers: 8, Lookups: 24, Concurrency: 8, Timeout: 15 * time.Second, Seed: 2})
	all, any := 0, 0
	for _, l := range res.Lookups {
		if l.Err != nil {
			t.Errorf("lookup: %v", l.Err)
		}
		if l.Found > 0 {
			any++
		}
		if l.Found == 8 {
			all++
		}
	}
	left, joined := w.Churned()
	t.Logf("%s: %d/%d lookups found a peer, %d all 8; %d announces failed; churn %d left, %d joined; net %+v",
		impl, any, len(res.Lookups), all, res.AnnounceFails, left, joined, w.Net.Stats())
	// Every lookup finds a peer; most find every one (a lost packet or a
	// departed storer can cost one). The network runs on the wall clock:
	// on a loaded machine answers come late and count as timeouts, and 16
	// of 24 found all 8 where 22 or more do on an idle one.
	if any != len(res.Lookups) || all < len(res.Lookups)/2 {
		t.Fatalf("%d of %d lookups found a peer, %d all 8", any, len(res.Lookups), all)
	}
}

// Among 10% closer liars (adversary.CloserLiar) our lookups still end,
// within their bound and without error, however many fabricated nodes and
// peers they are fed, and nearly all still find every announced peer (a
// lost packet or a silent storer can cost one); simbench measures the
// rest.
func TestOursAmongLiarsEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := Build(ctx, Options{Impl: Ours, Nodes: 300, Seed: 3, Model: simnet.Internet(3), Silent: 0.3, Liars: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const timeout = 15 * time.Second
	res := Measure(ctx, w, Workload{InfoHashes: 2, Announcers: 8, Lookups: 16, Concurrency: 8, Timeout: timeout, Seed: 4})
	found, all := 0, 0
	for _, l := range res.Lookups {
		if l.Err != nil {
			t.Errorf("lookup: %v", l.Err)
		}
		if l.Duration >= timeout {
			t.Errorf("a lookup ran into its bound (%v): the liars kept it going", l.Duration)
		}
		found += l.Found
		if l.Found == 8 {
			all++
		}
	}
	t.Logf("%d lookups found %d real peers in all, %d all 8; net %+v", len(res.Lookups), found, all, w.Net.Stats())
	if all < len(res.Lookups)*3/4 {
		t.Fatalf("%d of %d lookups found all 8 real peers", all, len(res.Lookups))
	}
}
