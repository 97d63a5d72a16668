//go:build cgo

package peer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/types/infohash"

	"node/internal/peertest"
	"node/internal/testutil"
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
	const seedIP = "127.0.120.1"
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
			s := utpSocket(t, "127.0.120."+string(rune('2'+i)))
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
	for i, magnet := range []bool{false, true} {
		name := map[bool]string{false: "torrent", true: "magnet"}[magnet]
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			// The client first: cleanups run last first, and its own waits
			// for every go-libutp goroutine, ours included, to end.
			cl := newAnacrolixUTP(t, "127.0.121."+string(rune('2'+i)), dst, false)
			s := utpSocket(t, "127.0.121.1")
			seeder, _ := runTorrent(t, utpConfig(s, mi.Info.InfoHash, mi.Info, src))
			select {
			case <-seeder.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("the seeder did not verify its data")
			}
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
	s1, s2 := utpSocket(t, "127.0.122.1"), utpSocket(t, "127.0.122.2")
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
	carriedBy(t, leech, "utp/")
	// Once the seeder is gone the leecher still says what carried its
	// data (a fetch's last event comes after its peers left).
	s1.Close()
	testutil.WaitFor(t, 20*time.Second, "the seeder gone", func() bool {
		st, err := leech.Stats(context.Background())
		return err == nil && st.Peers == 0
	})
	carriedBy(t, leech, "utp/")
}

// carriedBy checks that tor's Stats.DownloadedBy accounts for all it
// downloaded, over links starting with prefix alone.
func carriedBy(t *testing.T, tor *Torrent, prefix string) {
	t.Helper()
	st, err := tor.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for l, d := range st.DownloadedBy {
		if !strings.HasPrefix(l, prefix) || d <= 0 {
			t.Fatalf("downloaded %d bytes over %q, want %s* alone: %v", d, l, prefix, st.DownloadedBy)
		}
		sum += d
	}
	if sum != st.Downloaded || sum == 0 || st.DataConns == 0 {
		t.Fatalf("DownloadedBy %v over %d connections, Downloaded %d", st.DownloadedBy, st.DataConns, st.Downloaded)
	}
}

// lossyRelay forwards the datagrams between one client and a server,
// dropping each with probability loss and delaying the rest by delay: a
// long, lossy path on loopback.
type lossyRelay struct {
	front, back net.PacketConn
	server      netip.AddrPort
	loss        float64
	delay       time.Duration

	mu            sync.Mutex
	rng           *rand.Rand
	client        netip.AddrPort
	passed, drops int
	largest       int // the largest datagram seen, either way
}

// startLossyRelay relays to server from ip; clients dial the address it
// returns.
func startLossyRelay(t testing.TB, ip string, server netip.AddrPort, loss float64, delay time.Duration) (*lossyRelay, netip.AddrPort) {
	t.Helper()
	front, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	r := &lossyRelay{front: front, back: back, server: server, loss: loss, delay: delay, rng: rand.New(rand.NewPCG(1, 2))}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.pump(front, true) }()
	go func() { defer wg.Done(); r.pump(back, false) }()
	t.Cleanup(func() {
		front.Close()
		back.Close()
		wg.Wait()
	})
	return r, addrOf(front.LocalAddr())
}

func (r *lossyRelay) pump(from net.PacketConn, fromClient bool) {
	buf := make([]byte, 64<<10)
	for {
		n, a, err := from.ReadFrom(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		out, to := r.back, r.server
		if fromClient {
			r.client = addrOf(a)
		} else {
			out, to = r.front, r.client
		}
		r.largest = max(r.largest, n)
		drop := r.rng.Float64() < r.loss
		if drop {
			r.drops++
		} else {
			r.passed++
		}
		r.mu.Unlock()
		if drop || !to.IsValid() {
			continue
		}
		b := append([]byte(nil), buf[:n]...)
		time.AfterFunc(r.delay, func() { _, _ = out.WriteTo(b, net.UDPAddrFromAddrPort(to)) })
	}
}

func (r *lossyRelay) counts() (passed, drops int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passed, r.drops
}

// libtorrentUDPBuffer is the size of the buffer libtorrent (2.0)
// receives UDP into (udp_socket's receive_buffer): it loses a larger
// datagram, and libutp resends a packet at the size it built it, so a
// connection that sends one to libtorrent stalls for good.
const libtorrentUDPBuffer = 1500

// Over loopback, whose MTU (64 KiB) would let libutp send far larger
// datagrams and cost less CPU per byte, every datagram still fits
// libtorrent's receive buffer: a peer on loopback may be libtorrent.
func TestUTPDatagramsFitLibtorrent(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"big.bin": 4 << 20}, 256<<10)
	s1, s2 := utpSocket(t, "127.0.124.1"), utpSocket(t, "127.0.124.2")
	relay, via := startLossyRelay(t, "127.0.124.3", s1.Addr(), 0, 0)
	runTorrent(t, utpConfig(s1, mi.Info.InfoHash, mi.Info, src))
	cfg := utpConfig(s2, mi.Info.InfoHash, mi.Info, dst)
	cfg.Peers = []netip.AddrPort{via}
	leech, _ := runTorrent(t, cfg)
	waitDone(t, leech, 60*time.Second)
	sameTree(t, src, dst, "content")
	relay.mu.Lock()
	largest, passed := relay.largest, relay.passed
	relay.mu.Unlock()
	if largest > libtorrentUDPBuffer {
		t.Fatalf("a %d-byte datagram: libtorrent receives at most %d", largest, libtorrentUDPBuffer)
	}
	if largest < 1000 {
		t.Fatalf("the largest of %d datagrams was %d bytes: the transfer did not go through the relay", passed, largest)
	}
	t.Logf("%d datagrams, the largest %d bytes", passed, largest)
}

// lossyKiB is the size TestUTPLossyPath sends. At 5% loss and a 100 ms
// round trip uTP's congestion control (as TCP's) halves its window on
// nearly every round trip, and libutp's retransmit timeout is at least a
// second: 4 MiB took 87 s at 47 KiB/s, too long for every run. 512 KiB,
// two pieces, are some 500 datagrams both ways, some 25 of them lost.
// The test runs alone: LEDBAT reads the delay that other tests' CPU adds
// as congestion (beside other tests it ran at a third of its speed).
var lossyKiB = flag.Int("utp.lossy-kib", 512, "KiB TestUTPLossyPath sends")
var lossyLoss = flag.Float64("utp.lossy-loss", 0.05, "the share of datagrams TestUTPLossyPath drops")

// uTP over a path that loses 5% of datagrams and delays each by 50 ms
// (each way): the data arrive, every piece verified.
func TestUTPLossyPath(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"big.bin": *lossyKiB << 10}, 256<<10)
	s1, s2 := utpSocket(t, "127.0.123.1"), utpSocket(t, "127.0.123.2")
	relay, via := startLossyRelay(t, "127.0.123.3", s1.Addr(), *lossyLoss, 50*time.Millisecond)
	runTorrent(t, utpConfig(s1, mi.Info.InfoHash, mi.Info, src))
	cfg := utpConfig(s2, mi.Info.InfoHash, mi.Info, dst)
	cfg.Peers = []netip.AddrPort{via}
	start := time.Now()
	leech, _ := runTorrent(t, cfg)
	waitDone(t, leech, time.Duration(*lossyKiB)*120*time.Millisecond)
	took := time.Since(start)
	sameTree(t, src, dst, "content")
	st, err := leech.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	onlyUTP(t, st)
	passed, drops := relay.counts()
	if drops == 0 && *lossyLoss > 0 {
		t.Fatal("the relay dropped nothing")
	}
	t.Logf("%d KiB in %v (%.0f KiB/s); relay passed %d datagrams, dropped %d; %d hash failures",
		*lossyKiB, took.Round(time.Millisecond), float64(*lossyKiB)/took.Seconds(), passed, drops, st.HashFails)
}

// A peer without uTP (a TCP listener, nothing on its UDP port): our dial
// tries uTP, gives up after utpConnectTimeout and connects over TCP.
func TestUTPFallsBackToTCP(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ln, err := net.Listen("tcp4", "127.0.123.10:0")
	if err != nil {
		t.Fatal(err)
	}
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln})
	s := utpSocket(t, "127.0.123.11")
	leech, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst,
		Listeners: []net.Listener{s.Listener()}, UTPDial: s.Dial, Dial: boundDial("127.0.123.11"),
		Peers: []netip.AddrPort{addrOf(ln.Addr())}})
	waitDone(t, leech, 30*time.Second)
	sameTree(t, src, dst, "content")
	st, err := leech.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.TCPConns == 0 || st.UTPConns != 0 {
		t.Fatalf("%d connections over TCP, %d over uTP: want TCP alone", st.TCPConns, st.UTPConns)
	}
	if !leech.noUTP.has(addrOf(ln.Addr()), time.Now()) {
		t.Fatal("the TCP-only seeder is not remembered")
	}
}

// uTP connections that never send a handshake, from many addresses (a
// uTP SYN may come from any address, spoofed included), fill the pending
// handshakes of incoming uTP, and incoming TCP peers still get in: uTP's
// budget is its own.
func TestUTPSilentConnsLeaveTCP(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ln, err := net.Listen("tcp4", "127.0.123.20:0")
	if err != nil {
		t.Fatal(err)
	}
	s := utpSocket(t, "127.0.123.20")
	seeder, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
		Listeners: []net.Listener{s.Listener()}, UTPDial: s.Dial, Dial: noTCP})
	pending := func() int {
		seeder.hsUTP.mu.Lock()
		defer seeder.hsUTP.mu.Unlock()
		return seeder.hsUTP.total
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; pending() < maxPendingHandshakes; i++ {
		if i == 2*maxPendingHandshakes {
			t.Fatalf("%d silent uTP connections, %d handshakes pending", i, pending())
		}
		// maxConnsPerIP from each address.
		c, err := utpSocket(t, fmt.Sprintf("127.0.123.%d", 30+i/maxConnsPerIP)).Dial(ctx, s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		testutil.WaitFor(t, 5*time.Second, "the silent connection accepted", func() bool { return pending() > i || pending() == maxPendingHandshakes })
	}

	leech, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst, Dial: boundDial("127.0.123.21"),
		Peers: []netip.AddrPort{addrOf(ln.Addr())}})
	testutil.WaitFor(t, 5*time.Second, "the TCP peer connected", func() bool {
		st, err := seeder.Stats(ctx)
		return err == nil && st.TCPConns > 0
	})
	if n := pending(); n != maxPendingHandshakes {
		t.Fatalf("%d uTP handshakes pending when the TCP peer got in: want the budget full, %d", n, maxPendingHandshakes)
	}
	waitDone(t, leech, 20*time.Second)
	sameTree(t, src, dst, "content")
}
