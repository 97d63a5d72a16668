package dht

import (
	"context"
	"sync"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// Config.OnLookup hears of every lookup as it ends, once per socket on a
// dual-stack node, with its method, its family and its figures.
func TestOnLookup(t *testing.T) {
	net := startDual(t, 138, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range net[1:] {
		if _, err := n.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen []LookupDone
	)
	n, err := New(Config{
		Conn: listenLoopback(t, 138, 10), Conn6: listenLoopback6(t), QueryTimeout: time.Second,
		Bootstrap: []string{net[0].Addr().String(), net[0].Addr6().String()},
		OnLookup: func(l LookupDone) {
			mu.Lock()
			seen = append(seen, l)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	taken := func() []LookupDone {
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = nil
		return s
	}
	check := func(what, method string, got []LookupDone) {
		t.Helper()
		fams := map[bool]int{}
		for _, l := range got {
			if l.Method != method || l.Err != nil || l.Stats.Queries == 0 || l.Stats.Responses == 0 || l.Stats.Duration <= 0 {
				t.Errorf("%s: %+v", what, l)
			}
			fams[l.IPv6]++
		}
		if fams[false] == 0 || fams[true] == 0 {
			t.Errorf("%s: lookups by family (IPv6?) %v, want both", what, fams)
		}
	}
	if _, err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	var boot []LookupDone
	for _, l := range taken() {
		if l.Method == krpc.MethodFindNode {
			boot = append(boot, l)
		}
	}
	check("bootstrap", krpc.MethodFindNode, boot)
	if _, err := n.GetPeers(ctx, routing.ID{0x42}, nil); err != nil {
		t.Fatal(err)
	}
	// Only get_peers: a background refresh may run a find_node meanwhile.
	var got []LookupDone
	for _, l := range taken() {
		if l.Method == krpc.MethodGetPeers {
			got = append(got, l)
		}
	}
	if len(got) != 2 {
		t.Errorf("one GetPeers on a dual-stack node: %d lookups heard, want 2", len(got))
	}
	check("get_peers", krpc.MethodGetPeers, got)
}
