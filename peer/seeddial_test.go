package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
)

// A leecher that looked the torrent up before our seeder announced, and
// will not look again for a long while, never dials: it has a listener and
// nothing else. Our seeder's lookup finds it, and the seeder dials it; the
// leecher gets the info dictionary and every byte. Over IPv4 and IPv6.
func TestSeedDialsLeecherThatNeverDials(t *testing.T) {
	for _, fam := range []struct{ name, seedIP, leechIP string }{
		{"ipv4", "127.0.230.1", "127.0.230.2"},
		{"ipv6", "::1", "::1"},
	} {
		t.Run(fam.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			mi := makeContent(t, src, "content", testFiles, 64<<10)
			var seedLn, leechLn net.Listener
			if fam.name == "ipv6" {
				seedLn, leechLn = listen6(t), listen6(t)
			} else {
				seedLn, leechLn = listen4(t, fam.seedIP), listen4(t, fam.leechIP)
			}
			leecher, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: leechLn})
			fd := &fakeDHT{
				addr:  netip.MustParseAddrPort("127.0.230.99:6881"),
				from:  netip.MustParseAddrPort("127.0.230.98:6881"),
				peers: []netip.AddrPort{addrOf(leechLn.Addr())},
			}
			seeder, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: seedLn, DHT: fd, NoDownload: true})
			waitDone(t, leecher, 30*time.Second)
			sameTree(t, src, dst, "content")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if s, err := seeder.Stats(ctx); err != nil || s.Uploaded < mi.Info.Length {
				t.Fatalf("seeder stats %+v, %v: want Uploaded ≥ %d", s, err, mi.Info.Length)
			}
		})
	}
}

// The same with an anacrolix leecher, IPv6 only, with no DHT and no peer
// given: it has only the magnet link and waits. Our seeder dials it.
func TestSeedDialsAnacrolixLeecher(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	cl, leechAddr := newAnacrolixClient6(t, dst, false)
	tr, err := cl.AddMagnet(fmt.Sprintf("magnet:?xt=urn:btih:%x", mi.Info.InfoHash[:]))
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDHT{
		addr:  netip.MustParseAddrPort("[::1]:1"),
		from:  netip.MustParseAddrPort("[::1]:2"),
		peers: []netip.AddrPort{leechAddr},
	}
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: listen6(t), DHT: fd, NoDownload: true})
	select {
	case <-tr.GotInfo():
	case <-time.After(20 * time.Second):
		t.Fatalf("no info after 20 s: %+v", tr.Stats())
	}
	tr.DownloadAll()
	waitAnacrolixComplete(t, tr, 20*time.Second)
	sameTree(t, src, dst, "content")
}

// Two seeds have nothing for each other. A seed that connects to our seed
// is closed once its bitfield shows every piece; one our seed dials is
// closed the same way; and once a leecher completes, its connection to
// the seed it fetched from is closed.
func TestSeedClosesSeeds(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ih, pieces := mi.Info.InfoHash, mi.Info.NumPieces()

	dialledSeed, err := adversary.ServePeers("127.0.231.2", ih, func(p *adversary.Peer) { _ = adversary.PoseAsSeed(p, pieces, 0) })
	if err != nil {
		t.Fatal(err)
	}
	defer dialledSeed.Close()
	fd := &fakeDHT{
		addr:  netip.MustParseAddrPort("127.0.231.99:6881"),
		from:  netip.MustParseAddrPort("127.0.231.98:6881"),
		peers: []netip.AddrPort{dialledSeed.Addr},
	}
	seedLn := listen4(t, "127.0.231.1")
	seeder, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: seedLn, DHT: fd, NoDownload: true})
	seedAddr := addrOf(seedLn.Addr())

	// The seed our seeder dials.
	testutil.WaitFor(t, 10*time.Second, "our seeder to dial the other seed", func() bool { return dialledSeed.Accepted() == 1 })
	// The seed that dials ours.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := adversary.DialPeer(ctx, netip.MustParseAddr("127.0.231.3"), seedAddr, ih, adversary.RandomID())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_ = p.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := adversary.PoseAsSeed(p, pieces, 0); err == nil || isTimeout(err) {
		t.Fatalf("our seeder kept a seed that connected to it: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, "our seeder to hold no peers", func() bool {
		s, err := seeder.Stats(ctx)
		return err == nil && s.Peers == 0
	})

	// A leecher completes and closes the seed it fetched from.
	dst := t.TempDir()
	leecher, _ := runTorrent(t, Config{InfoHash: ih, Dir: dst, Listener: listen4(t, "127.0.231.4"), Peers: []netip.AddrPort{seedAddr}})
	waitDone(t, leecher, 30*time.Second)
	sameTree(t, src, dst, "content")
	testutil.WaitFor(t, 10*time.Second, "the leecher, now a seed, to be left with no peers", func() bool {
		s, err := leecher.Stats(ctx)
		return err == nil && s.Peers == 0
	})
	if n := dialledSeed.Accepted(); n != 1 {
		t.Fatalf("the dialled seed was dialled %d times", n)
	}
}

// seedRedialAfter holds: a seed we closed because we are one is not
// dialled again until seedRedialAfter has passed, at the address we
// dialled or at the port it said it listens on.
func TestSeedRedialAfterBound(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	dialled := netip.MustParseAddrPort("127.0.231.10:6881")
	listening := netip.MustParseAddrPort("127.0.231.11:7000")
	tor.addCandidate(dialled, netip.AddrPort{}, now)
	tor.addCandidate(listening, netip.AddrPort{}, now)
	out := &conn{addr: dialled, outgoing: true}
	tor.seedClosed(out, &peerState{c: out}, now)
	in := &conn{addr: netip.AddrPortFrom(listening.Addr(), 50000)}
	tor.seedClosed(in, &peerState{c: in, listenPort: listening.Port()}, now)
	if got := tor.dialable(now.Add(seedRedialAfter-time.Second), 4); len(got) != 0 {
		t.Fatalf("seeds dialled again before seedRedialAfter: %v", got)
	}
	if got := tor.dialable(now.Add(seedRedialAfter), 4); len(got) != 2 {
		t.Fatalf("after seedRedialAfter: %v, want both", got)
	}
}
