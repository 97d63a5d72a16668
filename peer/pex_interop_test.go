//go:build interop

package peer

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"node/internal/testutil"
	"node/internal/testutil/dhtnet"
)

// ltPexWait bounds the wait for libtorrent's first ut_pex message to us.
// libtorrent sends a connection its first list on the second tick after
// it has two peers, and then a diff a minute after the last: the wait is
// that minute with room for a loaded machine.
const ltPexWait = 100 * time.Second

// libtorrent, given a magnet link that names only our node N, learns from
// N's PEX of M, another of our nodes that N dialled, connects to it and
// downloads from it; and N takes libtorrent's PEX in. M never dials and
// no DHT knows either node, so a connection from libtorrent to M is PEX's
// doing. N is slow, so that the download needs M. Subnet 127.0.193.x belongs to this test.
func TestLibtorrentLearnsPeersByPex(t *testing.T) {
	needLibtorrent(t)
	// libtorrent wants DHT nodes; these know nothing of the torrent.
	nodes := dhtnet.Start(t, 193, 2)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 0)
	ih := mi.Info.InfoHash

	lnM := listenTCP(t, "127.0.193.102:0")
	// M dials no one (seeds dial the leechers they hear of), so that a
	// connection between M and the other client is that client's doing.
	m, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: lnM, NoDownload: true, Dial: refuseDial})
	// N is a slow download (seeds close seeds, so M would not stay).
	lnN := listenTCP(t, "127.0.193.101:0")
	n, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: t.TempDir(), Listener: lnN, Peers: addrs(lnM),
		Dial: boundDial("127.0.193.101"), MaxDownloadRate: 4 << 10, Logger: debugLogger(t)})
	testutil.WaitFor(t, 10*time.Second, "N connected to M", func() bool { return stats(t, m).Peers == 1 })

	magnet := fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=content&x.pe=%s", ih[:], addrOf(lnN.Addr()))
	lt := startLibtorrent(t, "linger", "127.0.193.201", nodes, dst, magnet, ltPexWait+60*time.Second)
	port, err := strconv.Atoi(lt.expect(t, "port", 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	lt.expect(t, "done", 60*time.Second)
	sameTree(t, src, dst, "content")
	if sm := stats(t, m); sm.Uploaded == 0 {
		t.Errorf("M, known to libtorrent only by PEX, uploaded nothing: %+v", sm)
	}
	if sn := stats(t, n); sn.PexSent == 0 {
		t.Errorf("N sent no PEX: %+v", sn)
	}

	// libtorrent, now a seed, has dropped our seeds. Two slow leechers of
	// ours that know only libtorrent hear of each other from it.
	ltAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.193.201"), uint16(port))
	var ls []*Torrent
	for _, ip := range []string{"127.0.193.103", "127.0.193.104"} {
		l, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: t.TempDir(), Listener: listenTCP(t, ip+":0"),
			Peers: []netip.AddrPort{ltAddr}, Dial: boundDial(ip), MaxDownloadRate: 8 << 10})
		ls = append(ls, l)
	}
	start := time.Now()
	for i, l := range ls {
		testutil.WaitFor(t, ltPexWait, fmt.Sprintf("leecher %d took in libtorrent's PEX", i+1), func() bool {
			s := stats(t, l)
			return s.PexReceived > 0 && s.PexAdded > 0
		})
	}
	t.Logf("libtorrent's PEX taken in after %v", time.Since(start).Round(time.Second))
	for i, l := range ls {
		if s := stats(t, l); s.PexBad != 0 || s.Peers < 2 {
			t.Errorf("leecher %d: %+v", i+1, s)
		}
	}
}
