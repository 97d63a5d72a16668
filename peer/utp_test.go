//go:build cgo

package peer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/types/infohash"

	"node/internal/peertest"
	"node/metadata"
	"node/peer/utp"
)

// utpSocket binds a uTP socket on ip for the test's length.
func utpSocket(t testing.TB, ip string) *utp.Socket {
	t.Helper()
	s, err := utp.Listen("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// noTCP is a Config.Dial for a torrent whose peers are reached over uTP
// alone.
func noTCP(context.Context, netip.AddrPort) (net.Conn, error) {
	return nil, errors.New("TCP is off in this test")
}

// utpConfig is a torrent on s alone: it listens and dials over uTP, never
// over TCP.
func utpConfig(s *utp.Socket, ih metadata.InfoHash, info *metadata.Info, dir string) Config {
	return Config{InfoHash: ih, Info: info, Dir: dir, Listeners: []net.Listener{s.Listener()}, Dial: noTCP, UTPDial: s.Dial}
}

// onlyUTP fails the test unless every connection was over uTP, and there
// was at least one.
func onlyUTP(t testing.TB, s Stats) {
	t.Helper()
	if s.UTPConns == 0 || s.TCPConns != 0 || s.UTPPeers != len(s.PeerList) {
		t.Fatalf("%d connections over uTP, %d over TCP, peers %+v: want uTP alone", s.UTPConns, s.TCPConns, s.PeerList)
	}
	for _, p := range s.PeerList {
		if p.Transport != TransportUTP {
			t.Fatalf("peer %+v: want transport %q", p, TransportUTP)
		}
	}
}

// newAnacrolixUTP is an anacrolix client on ip that speaks uTP alone, with
// no DHT: peers are given to it.
func newAnacrolixUTP(t testing.TB, ip, dir string, seed bool) *torrent.Client {
	t.Helper()
	cfg, err := peertest.ClientConfig(ip, dir, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultStorage = plainStorage{dir: dir}
	cfg.NoDHT = true
	cfg.DisableTCP = true
	cfg.DisableUTP = false
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		<-cl.Closed()
		waitAnacrolixGone(5 * time.Second)
	})
	return cl
}

// anacrolix seeds over uTP alone; we fetch by .torrent and by magnet,
// over uTP alone, every byte verified.
func TestUTPAnacrolixSeedsWeFetch(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	const seedIP = "127.0.91.1"
	cl := newAnacrolixUTP(t, seedIP, src, true)
	tr, err := cl.AddTorrent(toAnacrolix(t, mi))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.VerifyDataContext(ctx); err != nil {
		t.Fatal(err)
	}
	waitAnacrolixComplete(t, tr, 20*time.Second)
	seedAddr := anacrolixPeerAddr(t, cl, seedIP)

	for i, info := range []*metadata.Info{mi.Info, nil} {
		name := map[bool]string{true: "torrent", false: "magnet"}[info != nil]
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			s := utpSocket(t, "127.0.91."+string(rune('2'+i)))
			cfg := utpConfig(s, mi.Info.InfoHash, info, dst)
			cfg.Peers = []netip.AddrPort{seedAddr}
			tor, _ := runTorrent(t, cfg)
			waitDone(t, tor, 30*time.Second)
			sameTree(t, src, dst, "content")
			st, err := tor.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			onlyUTP(t, st)
			if st.HashFails != 0 || st.Downloaded < mi.Info.Length {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// We seed over uTP alone; anacrolix, uTP alone, fetches by .torrent and
// by magnet.
func TestUTPWeSeedAnacrolixFetches(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	s := utpSocket(t, "127.0.92.1")
	seeder, _ := runTorrent(t, utpConfig(s, mi.Info.InfoHash, mi.Info, src))
	select {
	case <-seeder.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the seeder did not verify its data")
	}

	for i, magnet := range []bool{false, true} {
		name := map[bool]string{false: "torrent", true: "magnet"}[magnet]
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			cl := newAnacrolixUTP(t, "127.0.92."+string(rune('2'+i)), dst, false)
			var tr *torrent.Torrent
			var err error
			if magnet {
				tr, _ = cl.AddTorrentInfoHash(infohash.T(mi.Info.InfoHash))
			} else {
				tr, err = cl.AddTorrent(toAnacrolix(t, mi))
				if err != nil {
					t.Fatal(err)
				}
			}
			tr.AddPeers([]torrent.PeerInfo{{Addr: net.UDPAddrFromAddrPort(s.Addr())}})
			select {
			case <-tr.GotInfo():
			case <-time.After(20 * time.Second):
				t.Fatal("anacrolix got no metadata over uTP")
			}
			tr.DownloadAll()
			waitAnacrolixComplete(t, tr, 30*time.Second)
			sameTree(t, src, dst, "content")
			st, err := seeder.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			onlyUTP(t, st)
		})
	}
}

// Two of ours, over uTP alone, by magnet.
func TestUTPNodeToNode(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	s1, s2 := utpSocket(t, "127.0.93.1"), utpSocket(t, "127.0.93.2")
	seeder, _ := runTorrent(t, utpConfig(s1, mi.Info.InfoHash, mi.Info, src))
	cfg := utpConfig(s2, mi.Info.InfoHash, nil, dst)
	cfg.Peers = []netip.AddrPort{s1.Addr()}
	leech, _ := runTorrent(t, cfg)
	waitDone(t, leech, 30*time.Second)
	sameTree(t, src, dst, "content")
	for _, tor := range []*Torrent{seeder, leech} {
		st, err := tor.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		onlyUTP(t, st)
	}
}
