//go:build linux

package tracker

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"node/internal/adversary"
)

// A tracker's name whose first address is dead (a round-robin name with
// a dead host, an IPv6 path that is down) is asked at the next one after
// dialFallbackDelay, not after the whole request's time; the dead
// address is an adversary.BlackHole, where connects hang.
func TestDeadFirstAddress(t *testing.T) {
	srv := newTarget(t, netip.MustParseAddr("127.0.0.1"), onePeer)
	for name, dead := range map[string]string{"round-robin": "127.0.0.5", "IPv6 down": "::1"} {
		t.Run(name, func(t *testing.T) {
			bh, err := adversary.NewBlackHole(netip.AddrPortFrom(netip.MustParseAddr(dead), srv.port()))
			if err != nil {
				t.Skipf("no black hole at %s: %v", dead, err)
			}
			t.Cleanup(bh.Close)
			c := ssrfClient(map[string][]netip.Addr{"tracker.test": {bh.Addr.Addr(), netip.MustParseAddr("127.0.0.1")}})
			// Well under HTTPTimeout: a dialler that gives the dead
			// address all of it never reaches the live one.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, err := c.Announce(ctx, fmt.Sprintf("http://tracker.test:%d/announce", srv.port()), Request{InfoHash: ih})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Peers, []netip.AddrPort{seed1}) || srv.hits.Load() == 0 {
				t.Errorf("peers %v, %d hits", r.Peers, srv.hits.Load())
			}
		})
	}
}
