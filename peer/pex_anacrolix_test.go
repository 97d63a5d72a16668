package peer

import (
	"net"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"node/internal/testutil"
	"node/internal/testutil/dhtnet"
)

// An anacrolix/torrent leecher given only our node N, a slow download,
// learns from N's PEX of M, a seed-only node of ours that no DHT knows,
// and downloads from it.
func TestAnacrolixLearnsPeersByPex(t *testing.T) {
	nodes := dhtnet.Start(t, 199, 2)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ih := mi.Info.InfoHash
	lnM := listenTCP(t, "127.0.199.102:0")
	// M dials no one (seeds dial the leechers they hear of), so that a
	// connection between M and the other client is that client's doing.
	m, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: lnM, NoDownload: true, Dial: refuseDial})
	lnN := listenTCP(t, "127.0.199.101:0")
	runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: t.TempDir(), Listener: lnN, Peers: addrs(lnM),
		Dial: boundDial("127.0.199.101"), MaxDownloadRate: 4 << 10})
	testutil.WaitFor(t, 10*time.Second, "N connected to M", func() bool { return stats(t, m).Peers == 1 })

	cl := newAnacrolixClient(t, "127.0.199.201", dst, false, nodes)
	tr, err := cl.AddTorrent(toAnacrolix(t, mi))
	if err != nil {
		t.Fatal(err)
	}
	tr.AddPeers([]torrent.PeerInfo{{Addr: torrent.PeerRemoteAddr(net.TCPAddrFromAddrPort(addrOf(lnN.Addr())))}})
	tr.DownloadAll()
	testutil.WaitFor(t, 30*time.Second, "anacrolix downloaded from M", func() bool { return stats(t, m).Uploaded > 0 })
	waitAnacrolixComplete(t, tr, 60*time.Second)
}
