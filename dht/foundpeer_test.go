package dht

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/krpc"
	"node/routing"
)

// GetPeersFrom and AnnounceFrom tell which node named each peer.
func TestGetPeersFromNamesTheSource(t *testing.T) {
	ih := routing.ID{7, 7, 7}
	peer := netip.MustParseAddrPort("127.0.99.9:6881")
	src, err := adversary.NewNode("127.0.99.1")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Serve(func(q *krpc.Msg, _ netip.AddrPort) *krpc.Msg {
		r := &krpc.Return{ID: routing.ID{7, 7, 6}, Token: "t"}
		if q.Q == krpc.MethodGetPeers {
			r.Values = krpc.Peers{peer}
		}
		return &krpc.Msg{R: r}
	})
	pc, err := net.ListenPacket("udp4", "127.0.99.2:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Conn: pc, Bootstrap: []string{src.Addr.String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, announce := range []bool{false, true} {
		found := make(chan FoundPeer, 16)
		if announce {
			_, err = n.AnnounceFrom(ctx, ih, 6881, found)
		} else {
			_, err = n.GetPeersFrom(ctx, ih, found)
		}
		if err != nil {
			t.Fatal(err)
		}
		close(found)
		var got []FoundPeer
		for f := range found {
			got = append(got, f)
		}
		if len(got) != 1 || got[0] != (FoundPeer{Addr: peer, From: src.Addr}) {
			t.Fatalf("announce %v: found %v, want %v from %v", announce, got, peer, src.Addr)
		}
	}
}
