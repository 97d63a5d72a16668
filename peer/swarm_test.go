package peer

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"node/internal/testutil/dhtnet"
)

// Our seeder and our leecher find each other through the DHT alone; the
// leecher starts from the info-hash (a magnet link) and fetches the
// metadata with BEP 9, then every byte.
func TestMagnetFromOurSeeder(t *testing.T) {
	nodes := dhtnet.Start(t, 70, 8)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)

	seed := newEndpoint(t, "127.0.71.1", nodes[0])
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: seed.ln, DHT: seed.node})
	leech := newEndpoint(t, "127.0.71.2", nodes[5])
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: leech.ln, DHT: leech.node})
	waitDone(t, tor, 30*time.Second)
	sameTree(t, src, dst, "content")
	if _, err := filepath.Abs(dst); err != nil {
		t.Fatal(err)
	}
}

// node seed with a magnet link: the metadata comes from another peer, then
// the data already on disk is verified and served, nothing downloaded.
func TestSeedByMagnetServesLocalData(t *testing.T) {
	src, copyDir, dst := t.TempDir(), t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 32<<10)
	copyTree(t, src, copyDir, "content")
	first, err := net.Listen("tcp4", "127.0.77.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: first})
	second, err := net.Listen("tcp4", "127.0.77.2:0")
	if err != nil {
		t.Fatal(err)
	}
	seeder, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: copyDir, Listener: second,
		Peers: addrs(first), NoDownload: true})
	waitDone(t, seeder, 20*time.Second) // complete from disk alone
	if s, _ := seeder.Stats(t.Context()); s.Downloaded != 0 {
		t.Fatalf("a seed downloaded %d bytes", s.Downloaded)
	}
	leech, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Peers: addrs(second)})
	waitDone(t, leech, 20*time.Second)
	sameTree(t, src, dst, "content")
}
