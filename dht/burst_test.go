package dht

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// A lookup keeps burstAlpha*Alpha queries in flight until it has Alpha
// answers and, for get_peers, a peer; then Alpha.
func TestLookupBurstAlpha(t *testing.T) {
	n := &Node{cfg: Config{Alpha: 3}}
	for _, tc := range []struct {
		method           string
		responses, peers int
		want             int
	}{
		{krpc.MethodFindNode, 0, 0, 6},
		{krpc.MethodFindNode, 2, 0, 6},
		{krpc.MethodFindNode, 3, 0, 3},
		{krpc.MethodGetPeers, 0, 0, 6},
		{krpc.MethodGetPeers, 3, 0, 6}, // no peer yet
		{krpc.MethodGetPeers, 20, 0, 6},
		{krpc.MethodGetPeers, 2, 1, 6}, // a peer, but under Alpha answers
		{krpc.MethodGetPeers, 3, 1, 3},
	} {
		l := &lookup{n: n, method: tc.method, stats: LookupStats{Responses: tc.responses, Peers: tc.peers}}
		if got := l.alpha(); got != tc.want {
			t.Errorf("%s with %d answers, %d peers: alpha %d, want %d", tc.method, tc.responses, tc.peers, got, tc.want)
		}
	}
}

// idAt is an ID at XOR distance d from the zero target.
func idAt(d byte) routing.ID {
	var id routing.ID
	id[19] = d
	return id
}

// Queries in flight to candidates outside the K closest live ones give
// their slots away; those among them, and failed or slow candidates
// (which do not count as live), do not change that.
func TestLookupOvertake(t *testing.T) {
	l := &lookup{n: &Node{cfg: Config{Alpha: 3}}, method: krpc.MethodGetPeers}
	add := func(d byte, st candState) *candidate {
		c := &candidate{Contact: routing.Contact{ID: idAt(d), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, d}), 6881)}, known: true, state: st}
		l.cands = append(l.cands, c)
		switch st {
		case inFlight:
			l.inflight++
		case slow:
			l.slow++
		}
		return c
	}
	near := add(1, inFlight)
	add(2, failed) // not live: does not push anyone out
	add(3, slow)
	for d := byte(4); d < 4+routing.K-2; d++ {
		add(d, fresh)
	}
	edge := add(4+routing.K-2, inFlight) // the K-th live one: keeps its slot
	far := []*candidate{add(20, inFlight), add(21, answered), add(22, inFlight)}
	l.overtake()
	if near.state != inFlight || edge.state != inFlight {
		t.Fatalf("a query among the K closest lost its slot: %v %v", near.state, edge.state)
	}
	if far[0].state != slow || far[2].state != slow || far[1].state != answered {
		t.Fatalf("outside the K closest: %v %v %v", far[0].state, far[1].state, far[2].state)
	}
	if far[0].slowAt.IsZero() {
		t.Fatal("an overtaken query has no time it went slow, for the trace")
	}
	if l.inflight != 2 || l.slow != 3 || l.stats.Overtaken != 2 || l.stats.Slow != 2 {
		t.Fatalf("inflight %d slow %d stats %+v", l.inflight, l.slow, l.stats)
	}
	l.overtake()
	if l.stats.Overtaken != 2 {
		t.Fatalf("overtaken twice: %+v", l.stats)
	}
}

// Over loopback, a get_peers lookup among nodes that never answer never
// has more than burstAlpha*Alpha queries holding a slot at once, and
// reaches that many: the trace's queries, each holding its slot from
// sent until it went slow or ended.
func TestLookupInFlightBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const alpha = 2
	looker := startOurs(t, 198, 1, nil, func(c *Config) {
		c.Alpha = alpha
		c.QueryTimeout = time.Second
	})[0]
	for range 10 {
		looker.rtt.observe(time.Millisecond) // soft timeout: minSoftTimeout
	}
	var target routing.ID
	for i := range 3 * burstAlpha * alpha {
		dead := listenLoopback(t, 199, i+1)
		defer dead.Close()
		looker.cache.add(routing.Contact{ID: idAt(byte(i + 1)), Addr: addrOf(t, dead)})
	}
	tr := NewTrace()
	if _, err := looker.GetPeers(WithTrace(ctx, tr), target, nil); err == nil {
		t.Fatal("a lookup among dead nodes succeeded")
	}
	ev, _ := tr.Events()
	if len(ev) != 3*burstAlpha*alpha {
		t.Fatalf("%d queries, want one to each of %d nodes", len(ev), 3*burstAlpha*alpha)
	}
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for _, e := range ev {
		end := e.Done
		if !e.Slow.IsZero() {
			end = e.Slow
		}
		edges = append(edges, edge{e.Sent, 1}, edge{end, -1})
	}
	// Ends before starts at the same instant: a slot freed and taken.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.d - b.d
	})
	held, most := 0, 0
	for _, e := range edges {
		held += e.d
		most = max(most, held)
	}
	if most != burstAlpha*alpha {
		t.Fatalf("at most %d queries held a slot at once, want %d", most, burstAlpha*alpha)
	}
}

// A dual-stack lookup's stats add up both families' counters.
func TestMergeStatsCounters(t *testing.T) {
	a := LookupStats{Queries: 1, Responses: 2, Slow: 3, Disowned: 4, Overtaken: 5}
	b := LookupStats{Queries: 10, Responses: 20, Slow: 30, Disowned: 40, Overtaken: 50}
	m := mergeStats(a, b, 0)
	if m.Queries != 11 || m.Responses != 22 || m.Slow != 33 || m.Disowned != 44 || m.Overtaken != 55 {
		t.Fatalf("%+v", m)
	}
}
