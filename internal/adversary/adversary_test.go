package adversary

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/krpc"
	"node/peer/wire"
	"node/routing"
)

// The two halves of the toolkit talk to each other: a dialled Peer and a
// served one exchange a message, and a Node answers another's query.
func TestPeerAndNode(t *testing.T) {
	ih := [20]byte{1, 2, 3}
	got := make(chan wire.Message, 1)
	s, err := ServePeers("127.0.0.1", ih, func(p *Peer) {
		_ = p.ReadUntil(5*time.Second, func(m wire.Message) bool { got <- m; return true })
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := DialPeer(ctx, netip.MustParseAddr("127.0.0.1"), s.Addr, ih, RandomID())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Send(&wire.Message{Type: wire.Have, Index: 7}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Type != wire.Have || m.Index != 7 {
			t.Fatalf("got %+v", m)
		}
	case <-ctx.Done():
		t.Fatal("no message")
	}

	a, err := NewNode("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Serve(func(q *krpc.Msg, _ netip.AddrPort) *krpc.Msg {
		return &krpc.Msg{R: &krpc.Return{ID: routing.ID{9}}}
	})
	b, err := NewNode("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Query(a.Addr, "xy", "ping", &krpc.Args{ID: routing.ID{8}}); err != nil {
		t.Fatal(err)
	}
	m, from, err := b.Recv(5 * time.Second)
	if err != nil || from != a.Addr || m.T != "xy" || m.Y != krpc.KindResponse {
		t.Fatalf("reply %+v from %v: %v", m, from, err)
	}
}
