//go:build interop

package tracker

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"node/internal/testutil"
)

// Against Debian's opentracker, over HTTP and UDP: a seeder's announce is
// what a leecher's finds, a scrape counts them, and stopped takes the
// seeder out. Time to first peer is measured from a fresh Announcer's
// start (UDP: connect included) to the first peer it streams.
func TestOpentracker(t *testing.T) {
	httpURL, udpURL := testutil.StartOpentracker(t, "127.0.0.1", ih)
	for _, u := range []string{httpURL, udpURL} {
		t.Run(u[:strings.IndexByte(u, ':')], func(t *testing.T) {
			c := NewClient("node-test", netip.Addr{})
			ctx := ctxT(t, 10*time.Second)
			seedPort := uint16(20000)
			if u == udpURL {
				seedPort = 20001
			}
			seed := Request{InfoHash: ih, PeerID: [20]byte{'s', byte(seedPort)}, Port: seedPort, Event: Started}
			if _, err := c.Announce(ctx, u, seed); err != nil {
				t.Fatal(err)
			}
			var found []time.Duration
			var firstPeer netip.AddrPort
			for i := range 5 {
				a := NewAnnouncer(Config{Tiers: [][]string{{u}}, InfoHash: ih, PeerID: [20]byte{'l', byte(i)},
					Port: 30000 + uint16(i), Progress: func() Progress { return Progress{Left: 100} },
					Client: NewClient("node-test", netip.Addr{})})
				begin := time.Now()
				r := start(t, a)
				f := r.next(t)
				found = append(found, time.Since(begin))
				firstPeer = f.Peers[0]
				r.stop()
			}
			want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), seedPort)
			if firstPeer.Addr() != want.Addr() {
				t.Errorf("found %v, want an address at %v", firstPeer, want.Addr())
			}
			slices.Sort(found)
			t.Logf("%s: time to first peer, 5 runs: min %v, median %v, max %v", u, found[0], found[2], found[4])
			res, err := c.Scrape(ctx, u, ih)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Seeders+res[0].Leechers == 0 {
				t.Errorf("scrape %+v: nobody", res[0])
			}
			seed.Event = Stopped
			if _, err := c.Announce(ctx, u, seed); err != nil {
				t.Fatal(err)
			}
			r, err := c.Announce(ctx, u, Request{InfoHash: ih, PeerID: [20]byte{'x'}, Port: 40000, Left: 1})
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(r.Peers, want) {
				t.Errorf("the stopped seeder is still named: %v", r.Peers)
			}
			t.Logf("stats %+v", c.Stats())
		})
	}
}
