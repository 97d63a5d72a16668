package dht

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/adversary"
	"node/krpc"
	"node/routing"
)

// A node that answers under another ID than it was named with is
// disowned: the nodes it names are never asked. One that claims to be
// nearer the target than it was named (a closer liar) has its peers
// dropped; one that was named nearer than it is (an honest node a liar
// named under a false ID) still has its peers passed on.
func TestLookupDisownsChangedIDs(t *testing.T) {
	ih := routing.ID{7, 7, 7}
	near := func(b byte) routing.ID { id := ih; id[19] = b; return id }
	far := routing.ID{0xf0, 1}
	honestPeer := netip.MustParseAddrPort("127.0.98.9:6881")
	liarPeer := netip.MustParseAddrPort("127.0.98.10:6881")
	followedPeer := netip.MustParseAddrPort("127.0.98.11:6881")

	nodes := make([]*adversary.Node, 4)
	for i := range nodes {
		var err error
		if nodes[i], err = adversary.NewNode("127.0.98.1"); err != nil {
			t.Fatal(err)
		}
		defer nodes[i].Close()
	}
	boot, honest, liar, hidden := nodes[0], nodes[1], nodes[2], nodes[3]
	var hiddenAsked atomic.Int32
	answer := func(id routing.ID, values krpc.Peers, named []routing.Contact) func(*krpc.Msg, netip.AddrPort) *krpc.Msg {
		return func(q *krpc.Msg, _ netip.AddrPort) *krpc.Msg {
			r := &krpc.Return{ID: id, Token: "t", Nodes: named}
			if q.Q == krpc.MethodGetPeers {
				r.Values = values
			}
			return &krpc.Msg{R: r}
		}
	}
	// The bootstrap node (asked by address alone, so its word is taken)
	// names the honest node under a false ID next to the target and the
	// liar under a far one.
	boot.Serve(answer(routing.ID{7, 7, 8}, nil, []routing.Contact{
		{ID: near(1), Addr: honest.Addr},
		{ID: far, Addr: liar.Addr},
	}))
	honest.Serve(answer(routing.ID{7, 7, 9}, krpc.Peers{honestPeer}, []routing.Contact{{ID: near(3), Addr: hidden.Addr}}))
	liar.Serve(answer(near(2), krpc.Peers{liarPeer}, []routing.Contact{{ID: near(4), Addr: hidden.Addr}}))
	hidden.Serve(func(q *krpc.Msg, from netip.AddrPort) *krpc.Msg {
		hiddenAsked.Add(1)
		return answer(near(3), krpc.Peers{followedPeer}, nil)(q, from)
	})

	pc, err := net.ListenPacket("udp4", "127.0.98.2:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Conn: pc, Bootstrap: []string{boot.Addr.String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	found := make(chan netip.AddrPort, 16)
	tr := NewTrace()
	st, err := n.GetPeers(WithTrace(ctx, tr), ih, found)
	if err != nil {
		t.Fatal(err)
	}
	close(found)
	var got []netip.AddrPort
	for p := range found {
		got = append(got, p)
	}
	if !slices.Equal(got, []netip.AddrPort{honestPeer}) {
		t.Errorf("found %v, want only %v", got, honestPeer)
	}
	if hiddenAsked.Load() != 0 {
		t.Error("a node named only by disowned nodes was asked")
	}
	if st.Disowned != 2 {
		t.Errorf("%d answers disowned, want 2", st.Disowned)
	}
	evs, _ := tr.Events()
	disowned := map[netip.AddrPort]bool{}
	for _, e := range evs {
		if e.Outcome == TraceDisowned {
			disowned[e.Addr] = true
		}
	}
	if len(disowned) != 2 || !disowned[honest.Addr] || !disowned[liar.Addr] {
		t.Errorf("trace: disowned %v, want the honest node and the liar", disowned)
	}
	// Neither enters the routing table.
	es, err := n.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Addr == honest.Addr || e.Addr == liar.Addr {
			t.Errorf("disowned node %v in the table", e.Contact)
		}
	}
}
