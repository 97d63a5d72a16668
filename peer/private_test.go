package peer

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"node/metadata"
	"node/peer/tracker"
)

// A private torrent (BEP 27) neither looks its peers up in the DHT nor
// announces there, and takes none a DHT lookup finds (one started before
// the metadata showed it private); a tracker's peers it takes.
func TestPrivateTorrentSkipsDHT(t *testing.T) {
	src := t.TempDir()
	makeContent(t, src, "content", map[string]int{"f": 100_000}, 32<<10)
	mi, err := metadata.Create(filepath.Join(src, "content"), metadata.CreateOptions{PieceLength: 32 << 10, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	dhtNode := netip.MustParseAddrPort("127.0.246.49:6881")
	found := netip.MustParseAddrPort("127.0.246.41:6881")
	fd := &fakeDHT{addr: netip.MustParseAddrPort("127.0.246.40:6881"), from: dhtNode, peers: []netip.AddrPort{found}}
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, NoDownload: true,
		Listener: listenTCP(t, "127.0.246.40:0"), DHT: fd})
	fromTrackerAddr := netip.MustParseAddrPort("127.0.246.42:6881")
	tor.post(addrsEvent{addrs: []netip.AddrPort{found}, from: dhtNode})
	tor.postFound(tracker.Found{Peers: []netip.AddrPort{fromTrackerAddr}, From: netip.MustParseAddrPort("127.0.246.48:80")})
	onLoop(t, tor, func(tt *Torrent) {
		tt.announced, tt.nextLook = time.Time{}, time.Time{}
		tt.discover(time.Now())
		if tt.looking {
			t.Error("a private torrent started a DHT lookup")
		}
		if tt.known[found] != nil {
			t.Error("a private torrent took a peer a DHT node named")
		}
		if cd := tt.known[fromTrackerAddr]; cd == nil || cd.kind != fromTracker {
			t.Errorf("a private torrent's tracker peer: %+v", cd)
		}
	})
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if len(fd.lookups) != 0 || len(fd.announces) != 0 {
		t.Errorf("a private torrent used the DHT: %d lookups, announces %v", len(fd.lookups), fd.announces)
	}
}
