package peer

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
)

func listenTCP(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func stats(t *testing.T, tor *Torrent) Stats {
	t.Helper()
	s, err := tor.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// One address opens more handshaking connections, each with its own peer
// ID, than we have slots, then only sends keep-alives: it keeps
// maxConnsPerIP of them, and an honest seeder that connects afterwards
// is taken and the download completes.
func TestOneAddressCannotTakeEverySlot(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 300_000}, 16<<10)
	info := mi.Info
	ln := listenTCP(t, "127.0.92.1:0")
	leech, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Listener: ln})

	sq := adversary.Squat(addrOf(ln.Addr()), info.InfoHash, []netip.Addr{netip.MustParseAddr("127.0.0.66")}, DefaultMaxConns+10, false)
	defer sq.Close()
	testutil.WaitFor(t, 10*time.Second, "the squatter still holds more than maxConnsPerIP slots", func() bool {
		return sq.Open() <= maxConnsPerIP && stats(t, leech).Peers <= maxConnsPerIP
	})

	seedLn := listenTCP(t, "127.0.92.2:0")
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: seedLn,
		Peers: addrs(ln), Dial: boundDial("127.0.92.2")})
	waitDone(t, leech, 20*time.Second)
	sameTree(t, src, leech.cfg.Dir, "content")
	if n := sq.Open(); n > maxConnsPerIP {
		t.Fatalf("the squatter holds %d connections, bound is %d", n, maxConnsPerIP)
	}
}

// Squatters from many addresses, one connection each and reconnecting
// when dropped, take every slot; the seeder we know of cannot be dialled
// without a free one. Turnover closes squatters that gave us nothing to
// make room, and the download completes.
func TestSquattersAreTurnedOver(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 300_000}, 16<<10)
	info := mi.Info
	// The seeder's address is known from the start, but it is not up
	// yet: the first dial fails, and the next waits for its backoff.
	seedLn := listenTCP(t, "127.0.93.1:0")
	seedAddr := addrOf(seedLn.Addr())
	seedLn.Close()
	ln := listenTCP(t, "127.0.93.2:0")
	leech, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Listener: ln,
		Peers: []netip.AddrPort{seedAddr}})
	testutil.WaitFor(t, 10*time.Second, "the first dial did not end", func() bool { return stats(t, leech).Dialing == 0 })

	var locals []netip.Addr
	for i := 100; i <= 100+DefaultMaxConns; i++ {
		locals = append(locals, netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}))
	}
	sq := adversary.Squat(addrOf(ln.Addr()), info.InfoHash, locals, 1, true)
	defer sq.Close()
	testutil.WaitFor(t, 10*time.Second, "the squatters did not take every slot", func() bool {
		return stats(t, leech).Peers == DefaultMaxConns
	})

	seedLn = listenTCP(t, seedAddr.String())
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: seedLn, NoDownload: true})
	waitDone(t, leech, 30*time.Second)
	sameTree(t, src, leech.cfg.Dir, "content")
}

// Incoming connections that never send their handshake hold at most
// maxPendingHandshakes goroutines, and one address at most
// maxConnsPerIP of them: the rest are closed at once, not after
// handshakeTimeout.
func TestPendingHandshakesBound(t *testing.T) {
	ln := listenTCP(t, "127.0.97.1:0")
	tor, _ := runTorrent(t, Config{InfoHash: [20]byte{9}, Dir: t.TempDir(), Listener: ln})
	closed := make(chan struct{}, 100)
	silent := func(local string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			var b [1]byte
			_, _ = c.Read(b[:])
			closed <- struct{}{}
		}()
	}
	const extra = 2
	for range maxConnsPerIP + extra {
		silent("127.0.97.2")
	}
	for i := range maxPendingHandshakes - maxConnsPerIP + extra {
		silent(fmt.Sprintf("127.0.98.%d", i+1))
	}
	deadline := time.After(handshakeTimeout / 2)
	for range 2 * extra {
		select {
		case <-closed:
		case <-deadline:
			t.Fatal("connections beyond the bounds were not closed before the handshake timeout")
		}
	}
	tor.hs.mu.Lock()
	total, one := tor.hs.total, tor.hs.perIP[ipKey(netip.MustParseAddr("127.0.97.2"))]
	tor.hs.mu.Unlock()
	if total != maxPendingHandshakes || one != maxConnsPerIP {
		t.Fatalf("%d handshakes pending (bound %d), %d from one address (bound %d)", total, maxPendingHandshakes, one, maxConnsPerIP)
	}
}
