package krpc

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"node/internal/testutil"
	"node/krpc/nodeid"
)

// Queries are counted by method on both ends; any method this package does
// not name, however long or odd, falls in one bounded "other" class.
func TestQueriesByMethod(t *testing.T) {
	b := newTransport(t, Config{Handler: func(netip.AddrPort, *Msg) *Msg { return &Msg{R: &Return{ID: nodeid.ID{2}}} }})
	a := newTransport(t, Config{Timeout: 2 * time.Second})
	ctx := context.Background()
	sent := map[string]int{
		MethodPing: 3, MethodFindNode: 2, MethodGetPeers: 1, MethodAnnouncePeer: 1, MethodSampleInfohashes: 2,
		"vote": 1, strings.Repeat("z", 200): 1,
	}
	var h nodeid.ID
	port := 6881
	args := &Args{ID: nodeid.ID{1}, Target: &h, InfoHash: &h, Token: "t", Port: &port}
	for m, k := range sent {
		for range k {
			if _, err := a.Query(ctx, b.LocalAddr(), m, args); err != nil {
				t.Fatalf("%.20q: %v", m, err)
			}
		}
	}
	want := ByMethod{ClassPing: 3, ClassFindNode: 2, ClassGetPeers: 1, ClassAnnouncePeer: 1, ClassSampleInfohashes: 2, ClassOther: 2}
	if got := a.Stats().QueriesOutByMethod; got != want {
		t.Errorf("sent by method %v, want %v", got, want)
	}
	testutil.WaitFor(t, 5*time.Second, "the answering side's counts", func() bool { return b.Stats().QueriesInByMethod == want })
	if s := b.Stats(); s.QueriesIn != 11 || s.QueriesInByMethod != want {
		t.Errorf("received %d, by method %v; want 11, %v", s.QueriesIn, s.QueriesInByMethod, want)
	}
	for c := range MethodClass(NumMethodClasses) {
		if ClassOf(c.String()) != c {
			t.Errorf("ClassOf(%q) = %v, want %v", c.String(), ClassOf(c.String()), c)
		}
	}
}
