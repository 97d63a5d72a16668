package dht

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// A node started from WarmState has the state's nodes in its table at
// once, answers find_node from them, and starts no bootstrap; a corrupt
// or oversized state is ignored.
func TestWarmState(t *testing.T) {
	r := testRand()
	m := newMemNet()
	var cs []routing.Contact
	for i := range 40 {
		cs = append(cs, routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}), 6881)})
	}
	id := routing.RandomID(r)
	b, err := EncodeState(id, cs)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Conn: m.listen(t, "10.0.0.1"), WarmState: b, NodeCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.ID() != id {
		t.Fatalf("ID %v, want the state's %v", n.ID(), id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	es, err := n.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A random ID's table holds the K of the 40 in its far half's bucket
	// and splits towards its own ID; at least K go in.
	if len(es) < routing.K {
		t.Fatalf("%d entries from a warm state of %d nodes", len(es), len(cs))
	}
	for _, e := range es {
		if e.State(time.Now(), 0) != routing.Good {
			t.Fatalf("warm entry %v is not good", e)
		}
	}
	if len(n.seedsCopy()) != 0 {
		t.Fatal("a warm state's nodes taken as seeds too")
	}
	cl, err := krpc.New(krpc.Config{Conn: m.listen(t, "10.0.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	target := routing.RandomID(r)
	resp, err := cl.Query(ctx, n.Addr(), krpc.MethodFindNode, &krpc.Args{ID: routing.ID{7}, Target: &target})
	if err != nil || len(resp.R.Nodes) != routing.K {
		t.Fatalf("find_node of the warm node: %v, %v", resp, err)
	}

	for _, bad := range [][]byte{[]byte("d2:id3:abce"), make([]byte, maxStateSize+1)} {
		n2, err := New(Config{Conn: m.listen(t, "10.0.0.3"), WarmState: bad, NodeCacheSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		es, err := n2.Entries(ctx)
		n2.Close()
		if err != nil || len(es) != 0 || n2.ID().IsZero() {
			t.Fatalf("from a bad warm state: %d entries, ID %v, %v", len(es), n2.ID(), err)
		}
	}
}
