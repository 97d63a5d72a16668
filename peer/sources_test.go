package peer

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/internal/testutil/delayproxy"
	"node/metadata"
	"node/peer/tracker"
	"node/peer/wire"
)

// Subnets 127.0.241-243.x belong to these tests.

// A source that named maxAddrsPerSource candidates (a tracker, announce
// after announce) still gets new ones in: each replaces its candidate
// that failed most, then its oldest that failed, of those we are not
// connected or dialling to. Its candidates never tried stay: with none
// that failed, a new one is refused, and counted.
func TestFullSourceReplacesItsWorst(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cand := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 5, byte(i >> 8), byte(i)}), 6881)
	}
	tracker := netip.MustParseAddrPort("127.6.0.1:80")
	for i := range maxAddrsPerSource {
		tor.addCandidate(cand(i), tracker, now.Add(time.Duration(i)))
	}
	// Every one of them connected: the next is refused.
	for i := range maxAddrsPerSource {
		tor.peers[&conn{addr: cand(i)}] = &peerState{}
	}
	tor.addCandidate(cand(500), tracker, now)
	if tor.known[cand(500)] != nil || tor.stats.sourceFull != 1 {
		t.Fatalf("a full source of connected candidates: new one kept %v, %d refusals counted",
			tor.known[cand(500)] != nil, tor.stats.sourceFull)
	}
	// Those that left: the one that failed most goes first, then the
	// oldest that failed; not one whose dial is in flight, nor one never
	// tried.
	for c := range tor.peers {
		if c.addr != cand(0) {
			delete(tor.peers, c)
		}
	}
	tor.dialFailed(cand(0), now)
	tor.dialFailed(cand(60), now)
	tor.dialFailed(cand(50), now)
	tor.dialFailed(cand(50), now)
	tor.dialFailed(cand(40), now)
	tor.dialFailed(cand(30), now)
	tor.dialStarted(cand(30))
	tor.addCandidate(cand(501), tracker, now.Add(time.Hour))
	tor.addCandidate(cand(502), tracker, now.Add(time.Hour))
	switch {
	case tor.known[cand(501)] == nil || tor.known[cand(502)] == nil:
		t.Fatalf("new candidates of a full source refused: %v %v, %d known, full %d", tor.known[cand(501)] != nil, tor.known[cand(502)] != nil, len(tor.known), tor.stats.sourceFull)
	case tor.known[cand(50)] != nil:
		t.Fatal("the candidate that failed most was kept")
	case tor.known[cand(40)] != nil:
		t.Fatal("the oldest candidate that failed was kept")
	case tor.known[cand(0)] == nil:
		t.Fatal("a connected candidate was replaced")
	case tor.known[cand(30)] == nil:
		t.Fatal("a candidate whose dial is in flight was replaced")
	case tor.known[cand(1)] == nil:
		t.Fatal("a candidate never tried was replaced")
	case tor.sources[ipKey(tracker.Addr())].addrs != maxAddrsPerSource:
		t.Fatalf("source holds %d candidates, bound %d", tor.sources[ipKey(tracker.Addr())].addrs, maxAddrsPerSource)
	case tor.stats.sourceReplaced != 2:
		t.Fatalf("%d replacements counted, want 2", tor.stats.sourceReplaced)
	}
	tor.addCandidate(cand(503), tracker, now.Add(time.Hour))
	tor.addCandidate(cand(504), tracker, now.Add(time.Hour))
	if tor.known[cand(503)] == nil || tor.known[cand(60)] != nil {
		t.Fatal("the last candidate that failed was not replaced")
	}
	if tor.known[cand(504)] != nil || tor.stats.sourceFull != 2 {
		t.Fatalf("with no candidate that failed: new one kept %v, %d refusals counted", tor.known[cand(504)] != nil, tor.stats.sourceFull)
	}
	tor.dialEnded(cand(30))
	tor.dialFailed(cand(30), now)
	if cd := tor.known[cand(30)]; cd == nil || cd.failures != 2 {
		t.Fatalf("the dial in flight's failure was not recorded: %+v", cd)
	}
}

// A hostile PEX peer flags an honest leecher as a seed, so that our seed
// would never dial it; once the DHT names the leecher, its word counts
// and our seed dials it.
func TestPexSeedFlagOverruledByDHT(t *testing.T) {
	_, info, seeder, seedAddr := fastSwarm(t, "127.0.241.1")
	leecher, err := adversary.ServePeers("127.0.241.3", info.InfoHash, func(p *adversary.Peer) { _ = p.Drain() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leecher.Close)
	liar := dialPex(t, "127.0.241.2", seedAddr, info.InfoHash, 0)
	theirs, err := liar.TheirPexID(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = liar.Drain() }()
	if err := liar.SendPex(theirs, []wire.PexPeer{{Addr: leecher.Addr, Flags: wire.PexSeed}}, nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the PEX contact taken", func() bool {
		seen := false
		onLoop(t, seeder, func(tt *Torrent) { seen = tt.known[leecher.Addr] != nil })
		return seen
	})
	if n := leecher.Accepted(); n != 0 {
		t.Fatalf("our seed dialled a peer flagged a seed %d times", n)
	}
	dhtNode := netip.MustParseAddrPort("127.0.241.9:6881")
	seeder.post(addrsEvent{addrs: []netip.AddrPort{leecher.Addr}, from: dhtNode})
	testutil.WaitFor(t, 10*time.Second, "our seed to dial the leecher the DHT named", func() bool {
		return leecher.Accepted() > 0
	})
	onLoop(t, seeder, func(tt *Torrent) {
		cd := tt.known[leecher.Addr]
		pexSrc := ipKey(netip.MustParseAddr("127.0.241.2"))
		if cd == nil || cd.kind != fromDHT || cd.src != pexSrc || cd.seed {
			t.Errorf("candidate after the DHT named it: %+v", cd)
		}
		// It stays in the count of the PEX peer that named it first
		// (see TestTakeoverKeepsSource).
		if s := tt.sources[pexSrc]; s == nil || s.addrs != 1 {
			t.Errorf("the PEX peer's count: %+v", s)
		}
	})
}

// A partial seed (NoDownload) wants nothing, as a complete one: it skips
// candidates flagged seeds, does not look for peers between announces,
// and tells trackers it needs none.
func TestPartialSeedWantsNothing(t *testing.T) {
	src, info, _, _ := fastSwarm(t, "127.0.241.11")
	dir := t.TempDir()
	copyTree(t, src, dir, "content")
	if err := os.Remove(filepath.Join(dir, "content", "g")); err != nil {
		t.Fatal(err)
	}
	dht := &fakeDHT{addr: netip.MustParseAddrPort("127.0.241.12:6881"), from: netip.MustParseAddrPort("127.0.241.19:6881")}
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: dir, NoDownload: true, DHT: dht,
		Listener: listenTCP(t, "127.0.241.12:0")})
	onLoop(t, tor, func(tt *Torrent) {
		if tt.complete() {
			t.Fatal("the partial seed is complete")
		}
		now := time.Now()
		seed := netip.MustParseAddrPort("127.0.241.13:6881")
		tt.addCandidateFrom(seed, netip.MustParseAddrPort("127.0.241.14:1"), fromPex, true, now)
		if got := tt.dialable(now, 10); len(got) != 0 {
			t.Errorf("a partial seed dials %v, flagged seeds", got)
		}
		tt.looking, tt.nextLook, tt.announced = false, time.Time{}, now
		tt.discover(now)
		if tt.looking {
			t.Error("a partial seed looks for peers between announces")
		}
		tt.saveProgress()
		if tt.progress.Load().NeedPeers {
			t.Error("a partial seed tells trackers it needs peers")
		}
	})
}

// A seed that connects to our seed sends its bitfield, then its BEP 10
// handshake with its listen port, in one batch: we close it at the
// bitfield, and still keep its listen address from being dialled.
func TestIncomingSeedListenAddrRemembered(t *testing.T) {
	_, info, seeder, seedAddr := fastSwarm(t, "127.0.241.21")
	listen := netip.MustParseAddrPort("127.0.241.22:7001")
	onLoop(t, seeder, func(tt *Torrent) {
		now := time.Now()
		tt.addCandidate(listen, netip.MustParseAddrPort("127.0.241.29:6881"), now)
		tt.known[listen].next = now.Add(time.Minute) // not dialled during the test
	})
	ctx := t.Context()
	p, err := adversary.DialPeer(ctx, netip.MustParseAddr("127.0.241.22"), seedAddr, info.InfoHash, adversary.RandomID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ended := make(chan error, 1)
	go func() { ended <- adversary.PoseAsSeedOneWrite(p, info.NumPieces(), int(listen.Port())) }()
	waitEnded(t, ended, "a seed meeting our seed")
	onLoop(t, seeder, func(tt *Torrent) {
		if next := tt.known[listen].next; time.Until(next) < seedRedialAfter-time.Minute {
			t.Errorf("the seed's listen address may be dialled again in %v, want %v", time.Until(next), seedRedialAfter)
		}
	})
}

// Candidates named by peers and DHT nodes before the metadata showed the
// torrent private (BEP 27) are forgotten, and no more are taken; a
// tracker's stay, and one the DHT named that the tracker named too.
func TestPrivateDropsPeerNamedCandidates(t *testing.T) {
	src := t.TempDir()
	makeContent(t, src, "content", map[string]int{"f": 100_000}, 32<<10)
	mi, err := metadata.Create(filepath.Join(src, "content"), metadata.CreateOptions{PieceLength: 32 << 10, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	ln := listenTCP(t, "127.0.242.1:0")
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true})
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: t.TempDir(), Listener: listenTCP(t, "127.0.242.2:0")})
	peerAddr := netip.MustParseAddrPort("127.0.242.9:1")
	pexed := netip.MustParseAddrPort("127.0.242.10:6881")
	hinted := netip.MustParseAddrPort("127.0.242.11:6881")
	dhted := netip.MustParseAddrPort("127.0.242.12:6881")
	tracked := netip.MustParseAddrPort("127.0.242.14:6881")
	both := netip.MustParseAddrPort("127.0.242.15:6881")
	trackerAddr := netip.MustParseAddrPort("127.0.242.18:80")
	onLoop(t, tor, func(tt *Torrent) {
		now := time.Now()
		tt.addCandidateFrom(pexed, peerAddr, fromPex, false, now)
		tt.addCandidateFrom(hinted, peerAddr, fromHint, false, now)
		tt.addCandidate(dhted, netip.MustParseAddrPort("127.0.242.19:6881"), now)
		tt.addCandidateFrom(tracked, trackerAddr, fromTracker, false, now)
		tt.addCandidate(both, netip.MustParseAddrPort("127.0.242.19:6881"), now)
		tt.addCandidateFrom(both, trackerAddr, fromTracker, false, now)
		for _, cd := range tt.known {
			cd.next = now.Add(time.Hour)
		}
		tt.addCandidate(addrOf(ln.Addr()), netip.AddrPort{}, now)
	})
	select {
	case <-tor.Metadata():
	case <-time.After(10 * time.Second):
		t.Fatal("no metadata")
	}
	onLoop(t, tor, func(tt *Torrent) {
		if !tt.info.Private {
			t.Fatal("not private")
		}
		if tt.known[pexed] != nil || tt.known[hinted] != nil {
			t.Error("a private torrent keeps candidates peers named")
		}
		if tt.known[dhted] != nil {
			t.Error("a private torrent keeps a candidate a DHT node named")
		}
		if tt.known[tracked] == nil || tt.known[both] == nil {
			t.Errorf("a private torrent forgot a tracker's candidate: %v %v", tt.known[tracked] != nil, tt.known[both] != nil)
		}
		if tt.addCandidateFrom(netip.MustParseAddrPort("127.0.242.13:6881"), peerAddr, fromPex, false, time.Now()) != nil {
			t.Error("a private torrent takes a PEX contact")
		}
	})
}

// Our own address coming back (a NAT's external address, here a
// forwarder to our listener) is dialled once: the handshake shows our
// peer ID, and the address is refused as a candidate from then on. The
// addresses remembered are bounded.
func TestSelfDialRemembered(t *testing.T) {
	ln := listenTCP(t, "127.0.243.1:0")
	tor, _ := runTorrent(t, Config{InfoHash: [20]byte{9}, Dir: t.TempDir(), Listener: ln})
	proxy, err := delayproxy.Listen("127.0.243.2:0", addrOf(ln.Addr()), delayproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	node := netip.MustParseAddrPort("127.0.243.9:6881")
	tor.post(addrsEvent{addrs: []netip.AddrPort{proxy.Addr()}, from: node})
	testutil.WaitFor(t, 10*time.Second, "the self-dial to be recognised", func() bool {
		self := false
		onLoop(t, tor, func(tt *Torrent) { self = tt.isSelf(proxy.Addr()) })
		return self
	})
	onLoop(t, tor, func(tt *Torrent) {
		now := time.Now()
		tt.addCandidate(proxy.Addr(), node, now)
		if tt.known[proxy.Addr()] != nil {
			t.Error("our own address taken as a candidate again")
		}
		for i := range 3 * maxSelfAddrs {
			tt.selfDialled(netip.AddrPortFrom(netip.MustParseAddr("127.0.243.3"), uint16(1000+i)))
		}
		if len(tt.self) > maxSelfAddrs {
			t.Errorf("%d own addresses remembered, bound %d", len(tt.self), maxSelfAddrs)
		}
	})
}

// A tracker's peer comes with the tracker's address as its source; one
// without is not taken (it would count as the user's).
func TestTrackerPeerWithoutSourceSkipped(t *testing.T) {
	tor, _ := runTorrent(t, Config{InfoHash: [20]byte{10}, Dir: t.TempDir()})
	bad := netip.MustParseAddrPort("127.0.243.20:6881")
	good := netip.MustParseAddrPort("127.0.243.21:6881")
	tor.postFound(tracker.Found{Peers: []netip.AddrPort{bad}})
	tor.postFound(tracker.Found{Peers: []netip.AddrPort{good}, From: netip.MustParseAddrPort("127.0.243.29:80")})
	onLoop(t, tor, func(tt *Torrent) {
		if tt.known[bad] != nil {
			t.Error("a tracker peer without a source taken")
		}
		if cd := tt.known[good]; cd == nil || cd.kind != fromTracker {
			t.Errorf("a tracker peer with its source: %+v", cd)
		}
	})
}
