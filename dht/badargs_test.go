package dht

import (
	"context"
	"errors"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// Arguments the BEPs leave open are handled, never fatal: unknown "want"
// values are ignored, implied_port overrides whatever port comes with it.
func TestLooseArguments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := New(Config{Conn: listenLoopback(t, 25, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	cl, err := krpc.New(krpc.Config{Conn: listenLoopback(t, 25, 2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	target := routing.RandomID(testRand())
	if _, err := cl.Query(ctx, n.Addr(), krpc.MethodFindNode, &krpc.Args{ID: routing.ID{7}, Target: &target,
		Want: []string{"n4", "zz", "n9", string(make([]byte, 40))}}); err != nil {
		t.Fatalf("find_node with unknown want values: %v", err)
	}
	r, err := cl.Query(ctx, n.Addr(), krpc.MethodGetPeers, &krpc.Args{ID: routing.ID{7}, InfoHash: &target})
	if err != nil {
		t.Fatal(err)
	}
	huge := 1 << 40
	if _, err := cl.Query(ctx, n.Addr(), krpc.MethodAnnouncePeer, &krpc.Args{ID: routing.ID{7}, InfoHash: &target,
		Token: r.R.Token, Port: &huge, ImpliedPort: 1}); err != nil {
		t.Fatalf("implied_port with an absurd port: %v", err)
	}
	r, err = cl.Query(ctx, n.Addr(), krpc.MethodGetPeers, &krpc.Args{ID: routing.ID{7}, InfoHash: &target})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.R.Values) != 1 || r.R.Values[0] != cl.LocalAddr() {
		t.Fatalf("stored %v, want the querier's own address %v", r.R.Values, cl.LocalAddr())
	}
	// A wrong-length token is refused as any bad token is.
	_, err = cl.Query(ctx, n.Addr(), krpc.MethodAnnouncePeer, &krpc.Args{ID: routing.ID{7}, InfoHash: &target, Token: "x", ImpliedPort: 1})
	var ke *krpc.Error
	if !errors.As(err, &ke) || ke.Code != krpc.ErrorCodeProtocol {
		t.Fatalf("short token: %v, want error 203", err)
	}
}
