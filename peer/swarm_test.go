package peer

import (
	"path/filepath"
	"testing"
	"time"
)

// Our seeder and our leecher find each other through the DHT alone; the
// leecher starts from the info-hash (a magnet link) and fetches the
// metadata with BEP 9, then every byte.
func TestMagnetFromOurSeeder(t *testing.T) {
	nodes := dhtNet(t, 70, 8)
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
