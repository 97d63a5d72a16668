package peer

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/types/infohash"

	"node/internal/testutil/dhtnet"
)

// anacrolix/torrent seeds; our leecher starts from the bare info-hash and
// finds the seeder through the DHT alone (the anacrolix client's own DHT
// server announced it to our nodes), fetches the info dictionary from it
// with BEP 9, then every block.
func TestAnacrolixSeedsWeFetch(t *testing.T) {
	nodes := dhtnet.Start(t, 80, 8)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ih := mi.Info.InfoHash

	const seedIP = "127.0.81.1"
	cl := newAnacrolixClient(t, seedIP, src, true, nodes)
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

	// The seeder's DHT server announces (implied port: its UDP socket
	// shares the TCP listener's port) once it has pieces to offer.
	seedAddr := anacrolixPeerAddr(t, cl, seedIP)
	waitAnnounced(t, nodes[6], ih, seedAddr, 20*time.Second)

	leech := newEndpoint(t, "127.0.81.2", nodes[3])
	tor, _ := runTorrent(t, Config{InfoHash: ih, Dir: dst, Listener: leech.ln, DHT: leech.node, Dial: boundDial("127.0.81.2")})
	waitDone(t, tor, 30*time.Second)
	sameTree(t, src, dst, "content")
	s, err := tor.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Downloaded < mi.Info.Length || s.HashFails != 0 {
		t.Fatalf("stats %+v: want Downloaded ≥ %d and no hash failures", s, mi.Info.Length)
	}
	// anacrolix sets the Fast extension bit too (BEP 6): it says have
	// all instead of sending a bitfield, and we say have none.
	if s.FastReceived.HaveAll == 0 || s.FastSent.HaveNone == 0 {
		t.Fatalf("stats %+v: no have all from the anacrolix seeder, or no have none to it", s)
	}
	t.Logf("fast messages sent %+v, received %+v", s.FastSent, s.FastReceived)
}

// Our seeder announces to our DHT; an anacrolix client given only a magnet
// link and our DHT nodes as starting nodes finds it, fetches the info
// dictionary (our BEP 9 serving) and every block (our block serving).
func TestWeSeedAnacrolixFetches(t *testing.T) {
	nodes := dhtnet.Start(t, 82, 8)
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ih := mi.Info.InfoHash

	seed := newEndpoint(t, "127.0.82.101", nodes[0])
	seedAddr := addrOf(seed.ln.Addr())
	seeder, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: seed.ln, DHT: seed.node, Dial: boundDial("127.0.82.101")})
	// anacrolix announces (and looks up) once per five minutes, so we
	// must be findable before it starts.
	waitAnnounced(t, nodes[5], ih, seedAddr, 20*time.Second)

	fetch := func(t *testing.T, ip string, direct bool) {
		dst := t.TempDir()
		cl := newAnacrolixClient(t, ip, dst, false, nodes)
		tr, err := cl.AddMagnet(fmt.Sprintf("magnet:?xt=urn:btih:%x", ih[:]))
		if err != nil {
			t.Fatal(err)
		}
		if tr.InfoHash() != infohash.T(ih) {
			t.Fatalf("magnet parsed to %v", tr.InfoHash())
		}
		if direct {
			tr.AddPeers([]torrent.PeerInfo{{Addr: torrentAddr(seedAddr), Trusted: true}})
		}
		select {
		case <-tr.GotInfo():
		case <-time.After(20 * time.Second):
			t.Fatalf("no info after 20 s: %+v", tr.Stats())
		}
		if got := tr.Info().TotalLength(); got != mi.Info.Length {
			t.Fatalf("info says %d bytes, want %d", got, mi.Info.Length)
		}
		tr.DownloadAll()
		waitAnacrolixComplete(t, tr, 20*time.Second)
		sameTree(t, src, dst, "content")
		if st := tr.Stats(); st.ConnStats.BytesReadUsefulData.Int64() < mi.Info.Length {
			t.Fatalf("read %v useful bytes, want %d", st.ConnStats.BytesReadUsefulData.Int64(), mi.Info.Length)
		}
	}
	t.Run("dht", func(t *testing.T) { fetch(t, "127.0.82.102", false) })
	// Belt and braces, apart from the DHT: the seeder's address given.
	t.Run("direct", func(t *testing.T) { fetch(t, "127.0.82.103", true) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := seeder.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Uploaded < mi.Info.Length {
		t.Fatalf("seeder stats %+v: want Uploaded ≥ %d", s, mi.Info.Length)
	}
	// Fast extension on both sides: our seeder said have all to each.
	if s.FastSent.HaveAll < 2 {
		t.Fatalf("seeder stats %+v: want have all sent to both anacrolix leechers", s)
	}
	t.Logf("fast messages sent %+v, received %+v", s.FastSent, s.FastReceived)
}

// Two of our seeders and two of our leechers at once, all through the
// DHT: both leechers complete, each having downloaded.
func TestTwoSeedTwoFetch(t *testing.T) {
	nodes := dhtnet.Start(t, 83, 8)
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ih := mi.Info.InfoHash

	for i := range 2 {
		ip := fmt.Sprintf("127.0.83.%d", 101+i)
		ep := newEndpoint(t, ip, nodes[i])
		runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: ep.ln, DHT: ep.node, NoDownload: true, Dial: boundDial(ip)})
		// A leecher whose first lookup comes up empty looks again only
		// after lookupEvery (20 s): the seeders must be findable first.
		waitAnnounced(t, nodes[7], ih, addrOf(ep.ln.Addr()), 20*time.Second)
	}
	var (
		wg   sync.WaitGroup
		tors [2]*Torrent
		dsts [2]string
	)
	for i := range 2 {
		dsts[i] = t.TempDir()
		ip := fmt.Sprintf("127.0.83.%d", 111+i)
		ep := newEndpoint(t, ip, nodes[4+i])
		tors[i], _ = runTorrent(t, Config{InfoHash: ih, Dir: dsts[i], Listener: ep.ln, DHT: ep.node, Dial: boundDial(ip)})
	}
	for i := range 2 {
		wg.Go(func() {
			select {
			case <-tors[i].Done():
			case <-time.After(40 * time.Second):
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, tor := range tors {
		s, err := tor.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-tor.Done():
		default:
			t.Fatalf("leecher %d not complete: %+v", i, s)
		}
		if s.Downloaded <= 0 || s.Have != s.Pieces || s.Done != mi.Info.Length {
			t.Fatalf("leecher %d stats %+v", i, s)
		}
		sameTree(t, src, dsts[i], "content")
	}
}

// torrentAddr turns an address into the form anacrolix's PeerInfo takes.
func torrentAddr(a netip.AddrPort) torrent.PeerRemoteAddr {
	return torrentIPPort{a}
}

type torrentIPPort struct{ netip.AddrPort }

func (torrentIPPort) Network() string { return "tcp" }
