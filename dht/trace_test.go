package dht

import (
	"context"
	"math"
	"net/netip"
	"testing"
	"time"

	"node/routing"
)

func TestLogDistance(t *testing.T) {
	target := routing.ID{0x42}
	flip := func(bit int) routing.ID {
		id := target
		id[bit/8] ^= 0x80 >> (bit % 8)
		return id
	}
	for _, tc := range []struct {
		id   routing.ID
		want float64
	}{
		{target, 0},
		{flip(159), 0},  // distance 1
		{flip(158), 1},  // distance 2
		{flip(0), 159},  // distance 2^159
		{flip(100), 59}, // distance 2^59
	} {
		if got := LogDistance(tc.id, target); got != tc.want {
			t.Errorf("LogDistance(%x) = %v, want %v", tc.id, got, tc.want)
		}
	}
	// 3·2^9 lies between 2^10 and 2^11.
	id := flip(149)
	id[18] ^= 0x02
	want := 10 + math.Log2(1.5)
	if got := LogDistance(id, target); math.Abs(got-want) > 1e-9 {
		t.Errorf("LogDistance(3·2^9) = %v, want %v", got, want)
	}
	var all routing.ID
	for i := range all {
		all[i] = 0xff
	}
	if got := LogDistance(all, routing.ID{}); got < 159.99 || got > 160 {
		t.Errorf("LogDistance(max) = %v, want 160 or just under", got)
	}
}

// A traced get_peers lookup records one event per query it sent, with the
// distance of the node's own ID, times in order, the peers and nodes each
// answer held, and a parent that answered before it was asked.
func TestLookupTrace(t *testing.T) {
	nodes := startOurs(t, 197, 12, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bootstrapAll(t, ctx, nodes)
	ih := routing.ID{0x5a, 0x17}
	if _, err := nodes[5].Announce(ctx, ih, 6881, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[netip.AddrPort]routing.ID{}
	for _, n := range nodes {
		ids[n.Addr()] = n.ID()
	}
	n, err := New(Config{Conn: listenLoopback(t, 197, 50), Bootstrap: []string{nodes[0].Addr().String()}, QueryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	// Untraced: nothing to record into, nothing recorded.
	if _, err := n.GetPeers(ctx, routing.ID{0x01}, nil); err != nil {
		t.Fatal(err)
	}

	tr := NewTrace()
	st, err := n.GetPeers(WithTrace(ctx, tr), ih, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs, dropped := tr.Events()
	if dropped != 0 || len(evs) != st.Queries || st.Queries == 0 {
		t.Fatalf("%d events, %d dropped, for %d queries", len(evs), dropped, st.Queries)
	}
	if tr.Target() != ih {
		t.Errorf("target %x", tr.Target())
	}
	answered, withPeers := map[netip.AddrPort]time.Time{}, 0
	for i, e := range evs {
		if e.Sent.Before(tr.Start()) || e.Done.Before(e.Sent) || (i > 0 && e.Done.Before(evs[i-1].Done)) {
			t.Errorf("event %d: times out of order: start %v %+v", i, tr.Start(), e)
		}
		if e.Method != "get_peers" || e.IPv6 {
			t.Errorf("event %d: %+v", i, e)
		}
		if e.Outcome != TraceAnswered {
			continue
		}
		id, ok := ids[e.Addr]
		if !ok {
			t.Errorf("event %d: answer from %v, not a node of ours", i, e.Addr)
			continue
		}
		if want := LogDistance(id, ih); e.Dist != want || e.Dist < 0 || e.Dist > 160 {
			t.Errorf("event %d: distance %v, want %v", i, e.Dist, want)
		}
		if e.From.IsValid() {
			at, ok := answered[e.From]
			if !ok || at.After(e.Sent) {
				t.Errorf("event %d: named by %v, which had not answered by %v", i, e.From, e.Sent)
			}
		}
		if e.Nodes == 0 && e.Peers == 0 {
			t.Errorf("event %d: an answer with nothing in it: %+v", i, e)
		}
		if e.Peers > 0 {
			withPeers++
		}
		answered[e.Addr] = e.Done
	}
	if len(answered) != st.Responses || withPeers == 0 {
		t.Errorf("%d answers traced (%d with peers), stats say %d", len(answered), withPeers, st.Responses)
	}

	// The bound: past it, events are counted, not kept.
	small := NewTrace()
	small.max = 3
	st, err = n.GetPeers(WithTrace(ctx, small), ih, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs, dropped = small.Events()
	if len(evs) != 3 || dropped != st.Queries-3 || dropped == 0 {
		t.Errorf("bound 3: %d events, %d dropped, %d queries", len(evs), dropped, st.Queries)
	}
	if NewTrace().max != MaxTraceEvents {
		t.Errorf("a new trace is bounded by %d, want MaxTraceEvents", NewTrace().max)
	}
}
