package peer

import (
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
)

// A DHT node names 100 ports of one host, each a peer that handshakes.
// Our dials to that host, in flight and connected, stay within
// maxConnsPerIP; and a dial whose connection is refused after the
// handshake (the host took its maxConnsPerIP slots by connecting to us
// meanwhile) counts as failed, so the candidate is not dialled again as
// if untried.
func TestOneHostManyPortsDials(t *testing.T) {
	ih := [20]byte{0x14, 1}
	host := "127.0.95.2"
	farm, err := adversary.ListenPorts(host, ih, maxAddrsPerSource, true)
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	ln := listenTCP(t, "127.0.95.1:0")
	tor, stop := startTorrent(t, Config{InfoHash: ih, Dir: t.TempDir(), Listener: ln}, nil)
	node := netip.MustParseAddrPort("127.0.95.3:6881")
	if !tor.post(addrsEvent{addrs: farm.Addrs, from: node}) {
		t.Fatal("torrent stopped")
	}
	// The handshakes are held, so every dial we start stays in flight
	// and reaches the farm. The second round of dials (each addrsEvent
	// starts one, and the stats query after it is answered after it)
	// must count the first round's, still in flight.
	for round := range 2 {
		if round > 0 && !tor.post(addrsEvent{addrs: farm.Addrs, from: node}) {
			t.Fatal("torrent stopped")
		}
		var dialing int
		testutil.WaitFor(t, 10*time.Second, "our dials did not reach the host", func() bool {
			dialing = stats(t, tor).Dialing
			return dialing > 0 && farm.Open() == dialing
		})
		if dialing > maxConnsPerIP || farm.Peak() > maxConnsPerIP {
			t.Fatalf("round %d: %d dials in flight to one host (peak %d), bound is maxConnsPerIP = %d", round, dialing, farm.Peak(), maxConnsPerIP)
		}
	}

	// The host takes its slots by connecting to us, then lets our dials
	// handshake: they are refused.
	sq := adversary.Squat(addrOf(ln.Addr()), ih, []netip.Addr{netip.MustParseAddr(host)}, maxConnsPerIP, false)
	defer sq.Close()
	testutil.WaitFor(t, 10*time.Second, "the host's own connections were not taken", func() bool {
		return stats(t, tor).Peers == maxConnsPerIP
	})
	farm.Release()
	testutil.WaitFor(t, 10*time.Second, "our dials did not end", func() bool {
		return stats(t, tor).Dialing == 0 && farm.Open() == 0
	})
	if s := stats(t, tor); s.Peers != maxConnsPerIP {
		t.Fatalf("%d peers, want the host's %d", s.Peers, maxConnsPerIP)
	}
	stop()
	dialed := farm.Dialed()
	if len(dialed) == 0 || len(dialed) > maxConnsPerIP {
		t.Fatalf("%d ports of one host dialled, bound is %d", len(dialed), maxConnsPerIP)
	}
	for _, a := range dialed {
		if cd := tor.known[a]; cd != nil && cd.failures == 0 {
			t.Errorf("%v was refused after its handshake but is still an untried candidate", a)
		}
	}
}
