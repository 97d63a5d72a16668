package peer

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"node/dht"
	"node/internal/adversary"
	"node/internal/testutil"
	"node/internal/testutil/dhtnet"
	"node/routing"
)

// A DHT node answers get_peers with thousands of junk values (its own
// sockets on one address hand them out, as many as fit each answer). They
// do not crowd out the seeder announced afterwards: it is dialled and the
// download completes.
func TestJunkValuesDoNotCrowdOutPeers(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 300_000}, 16<<10)
	info := mi.Info
	nodes := dhtnet.Start(t, 94, 6)

	var junk []netip.AddrPort
	for i := range 5 * adversary.FloodValuesPerAnswer {
		// 127.0.95.x: nothing listens there.
		junk = append(junk, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 95, byte(i%250 + 1)}), uint16(2000+i)))
	}
	flood, err := adversary.FloodPeers("127.0.96.1", routing.ID(info.InfoHash), junk)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()

	ln := listenTCP(t, "127.0.94.100:0")
	pc, err := net.ListenPacket("udp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	boot := []string{nodes[0].Addr().String()}
	for _, a := range flood.Addrs() {
		boot = append(boot, a.String())
	}
	n, err := dht.New(dht.Config{Conn: pc, Bootstrap: boot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	// The seeder may be found only by the lookup after the one that
	// brought the flood: lookEvery brings it in 2 s, not lookupEvery's 20.
	const lookEvery = 2 * time.Second
	leech, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Listener: ln, DHT: n, lookEvery: lookEvery})
	testutil.WaitFor(t, 15*time.Second, "the flood did not arrive", func() bool {
		return flood.Answered() >= len(flood.Nodes) && stats(t, leech).Known >= maxAddrsPerSource
	})

	// Only now is the seeder announced. It never dials (NoDownload), so
	// it is found only if the leecher still takes new candidates.
	seed := newEndpoint(t, "127.0.94.101", nodes[1])
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: seed.ln, DHT: seed.node, NoDownload: true})
	waitDone(t, leech, lookEvery+20*time.Second)
	sameTree(t, src, leech.cfg.Dir, "content")
	if s := stats(t, leech); s.Known > maxAddrsPerSource+1 {
		t.Fatalf("%d candidates kept, at most %d from the flooder", s.Known, maxAddrsPerSource)
	}
}
