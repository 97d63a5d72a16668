package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/mse"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/metadata"
	"node/peer/wire"
)

// Subnets 127.0.50.x to 127.0.59.x belong to these tests.

// newMux runs a Mux on a TCP listener on ip until the test ends.
func newMux(t testing.TB, ip string, enc Encryption, more ...net.Listener) *Mux {
	t.Helper()
	m := NewMux(MuxConfig{Listeners: append([]net.Listener{listen4(t, ip)}, more...), Encryption: enc})
	t.Cleanup(func() { m.Close() })
	return m
}

func muxAddr(m *Mux) netip.AddrPort { return addrOf(m.addr()) }

// seedBehind runs a seed of mi from dir behind m.
func seedBehind(t testing.TB, m *Mux, mi *metadata.MetaInfo, dir string, enc Encryption) *Torrent {
	t.Helper()
	ln, err := m.Listener(mi.Info.InfoHash)
	if err != nil {
		t.Fatal(err)
	}
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dir, Listener: ln,
		NoDownload: true, Dial: refuseDial, Encryption: enc})
	return tor
}

// twoContents makes two torrents of different content under one dir.
func twoContents(t testing.TB) (src string, a, b *metadata.MetaInfo) {
	t.Helper()
	src = t.TempDir()
	a = makeContent(t, src, "content", testFiles, 64<<10)
	b = makeContent(t, src, "other", map[string]int{"x.bin": 700_001, "y/z.bin": 123_456}, 32<<10)
	if a.Info.InfoHash == b.Info.InfoHash {
		t.Fatal("two torrents with one info-hash")
	}
	return src, a, b
}

// Two torrents behind one Mux on one port, each fetched by another peer
// that knows only that port: in plaintext, and with MSE required on
// both sides (RC4, the only stream a torrent in require mode takes; the
// info-hashes of both torrents candidate secret keys of the Mux). The
// seeds tell their peers the Mux's port (BEP 10 "p") and count the
// connections by transport.
func TestMuxTwoTorrents(t *testing.T) {
	src, a, b := twoContents(t)
	for i, mode := range []Encryption{EncryptOff, EncryptRequire} {
		t.Run(mode.String(), func(t *testing.T) {
			subnet := fmt.Sprintf("127.0.%d", 50+i)
			m := newMux(t, subnet+".1", mode)
			port := muxAddr(m).Port()
			var seeds []*Torrent
			for _, mi := range []*metadata.MetaInfo{a, b} {
				seed := seedBehind(t, m, mi, src, mode)
				if got := seed.listenPort(); got != int(port) {
					t.Fatalf("seed listens on port %d, the Mux on %d", got, port)
				}
				seeds = append(seeds, seed)
			}
			for j, mi := range []*metadata.MetaInfo{a, b} {
				dst := t.TempDir()
				cfg := Config{InfoHash: mi.Info.InfoHash, Dir: dst, Peers: []netip.AddrPort{muxAddr(m)},
					Dial: boundDial(fmt.Sprintf("%s.%d", subnet, 10+j)), Encryption: mode}
				if j == 1 {
					cfg.Info = mi.Info // the other is a magnet: its metadata comes through the Mux too
				}
				leech, _ := runTorrent(t, cfg)
				waitDone(t, leech, 30*time.Second)
				sameTree(t, src, dst, mi.Info.Name)
				if mode == EncryptOff {
					if told := handshakeP(t, netip.MustParseAddr(subnet+".20"), muxAddr(m).String(), mi.Info.InfoHash); told != int(port) {
						t.Fatalf("the seed told its peer port %d, the Mux listens on %d", told, port)
					}
				}
				s := stats(t, seeds[j])
				if s.TCPConns == 0 || s.Uploaded < mi.Info.Length {
					t.Fatalf("seed %d: %d TCP connections, uploaded %d of %d", j, s.TCPConns, s.Uploaded, mi.Info.Length)
				}
			}
			if st := m.Stats(); st.Routed < 2 {
				t.Fatalf("Mux stats %+v: want at least 2 routed", st)
			}
		})
	}
}

// An anacrolix leecher fetches from a seed behind a Mux, which also
// serves another torrent.
func TestMuxAnacrolixLeecher(t *testing.T) {
	src, a, b := twoContents(t)
	m := newMux(t, "127.0.52.1", EncryptPrefer)
	seedBehind(t, m, b, src, EncryptPrefer)
	seed := seedBehind(t, m, a, src, EncryptPrefer)
	dst := t.TempDir()
	_, tr := newObfuscatingAnacrolix(t, "127.0.52.2", dst, a, false, anacrolixRequiresMSE)
	tr.AddPeers([]torrent.PeerInfo{{Addr: torrentAddr(muxAddr(m)), Trusted: true}})
	tr.DownloadAll()
	waitAnacrolixComplete(t, tr, 30*time.Second)
	sameTree(t, src, dst, "content")
	if s := stats(t, seed); s.Uploaded < a.Info.Length {
		t.Fatalf("seed uploaded %d of %d", s.Uploaded, a.Info.Length)
	}
}

// waitHandshakesIdle waits until m has no handshake in progress.
func waitHandshakesIdle(t testing.TB, m *Mux) {
	t.Helper()
	testutil.WaitFor(t, handshakeTimeout+5*time.Second, "the Mux's handshakes to end", func() bool {
		m.hs.mu.Lock()
		defer m.hs.mu.Unlock()
		return m.hs.total == 0 && len(m.hs.perIP) == 0 && len(m.hs.perNet) == 0 && len(m.hs.live) == 0
	})
}

// closedSoon reports whether c is closed by the other side within d: a
// read ends in EOF or a reset, not in our deadline.
func closedSoon(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return !isTimeout(err)
}

// A connection naming an info-hash no torrent behind the Mux has, in
// plaintext or through MSE (with an unknown secret key, or a known one
// and another info-hash in the handshake), is closed at once, and its
// handshake ends: nothing is left running for it.
func TestMuxUnknownInfoHash(t *testing.T) {
	src, a, _ := twoContents(t)
	m := newMux(t, "127.0.53.1", EncryptPrefer)
	seedBehind(t, m, a, src, EncryptPrefer)
	local := netip.MustParseAddr("127.0.53.2")
	unknown := [20]byte{0xee, 1}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
	c, err := d.DialContext(ctx, "tcp4", muxAddr(m).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(adversary.Handshake(unknown, adversary.RandomID()).Append(nil)); err != nil {
		t.Fatal(err)
	}
	if !closedSoon(c, handshakeTimeout/2) {
		t.Fatal("a plaintext handshake for an unknown torrent was not closed")
	}
	if _, err := adversary.MSEInitiate(ctx, local, muxAddr(m), unknown, unknown, mse.AllSupportedCrypto); err == nil {
		t.Fatal("an MSE initiator with an unknown secret key got through")
	}
	if _, err := adversary.MSEInitiate(ctx, local, muxAddr(m), a.Info.InfoHash, unknown, mse.AllSupportedCrypto); err == nil {
		t.Fatal("an MSE initiator naming another torrent than its secret key got an answer")
	}
	// The honest one, for contrast.
	if _, err := adversary.MSEInitiate(ctx, local, muxAddr(m), a.Info.InfoHash, a.Info.InfoHash, mse.CryptoMethodRC4); err != nil {
		t.Fatalf("an honest MSE initiator: %v", err)
	}
	waitHandshakesIdle(t, m)
	if st := m.Stats(); st.Unknown < 2 || st.Failed < 1 {
		t.Fatalf("Mux stats %+v: want 2 unknown (plaintext, skey mismatch) and 1 failed (no skey)", st)
	}
}

// A Mux holds at most maxConnsPerIP handshakes from one address,
// maxHandshakesPerNet from one /24 and maxMuxHandshakes over all: a
// newcomer beyond one takes the place of the silent connection in that
// scope that has waited longest, which is closed, and the counts stay at
// the bounds. A slowloris dripping its handshake a byte at a time holds
// its slots for handshakeTimeout at most, and an honest peer gets
// through meanwhile.
func TestMuxHandshakeBounds(t *testing.T) {
	t.Parallel()
	src, a, _ := twoContents(t)
	// The silent connections must outlive the test's steps, however
	// slow the machine.
	m := NewMux(MuxConfig{Listeners: []net.Listener{listen4(t, "127.0.54.1")}, firstBytes: handshakeTimeout})
	t.Cleanup(func() { m.Close() })
	seedBehind(t, m, a, src, EncryptPrefer)
	addr := muxAddr(m)
	counts := func(p netip.Addr) (total, perIP, perNet int) {
		m.hs.mu.Lock()
		defer m.hs.mu.Unlock()
		return m.hs.total, m.hs.perIP[ipKey(p)], m.hs.perNet[netKey(p)]
	}

	drip, err := adversary.StartHandshakeDrip(netip.MustParseAddr("127.0.54.2"), addr, a.Info.InfoHash, maxConnsPerIP, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer drip.Stop()

	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	dial := func(local netip.Addr) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
		c, err := d.Dial("tcp4", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
		return c
	}
	// waitCount waits for the connection just dialled to be counted:
	// admissions are in the order of the accepts.
	waitCount := func(want int) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("%d handshakes", want), func() bool {
			n, _, _ := counts(netip.IPv4Unspecified())
			return n == want
		})
	}

	// One address: the fourth silent connection replaces the first.
	one := netip.MustParseAddr("127.0.55.1")
	first := dial(one)
	for range maxConnsPerIP - 1 {
		dial(one)
	}
	waitCount(2 * maxConnsPerIP)
	dial(one)
	if !closedSoon(first, handshakeTimeout/2) {
		t.Fatal("the oldest silent connection from a full address was not evicted")
	}
	if _, perIP, _ := counts(one); perIP != maxConnsPerIP {
		t.Fatalf("%d handshakes from one address, bound %d", perIP, maxConnsPerIP)
	}

	// One /24: filled from other addresses, its next newcomer evicts.
	n := maxConnsPerIP
	for i := 0; n < maxHandshakesPerNet; i++ {
		dial(netip.AddrFrom4([4]byte{127, 0, 55, byte(10 + i/maxConnsPerIP)}))
		n++
	}
	waitCount(maxConnsPerIP + maxHandshakesPerNet)
	before := m.Stats().Evicted
	dial(netip.MustParseAddr("127.0.55.200"))
	testutil.WaitFor(t, 5*time.Second, "an eviction in the full /24", func() bool { return m.Stats().Evicted > before })
	if total, _, perNet := counts(one); perNet != maxHandshakesPerNet || total != maxConnsPerIP+maxHandshakesPerNet {
		t.Fatalf("%d handshakes from one /24 (bound %d), %d in all", perNet, maxHandshakesPerNet, total)
	}

	// Over all: /24s of 15, then one more from a fresh /24.
	n = maxConnsPerIP + maxHandshakesPerNet
	for i := 0; n < maxMuxHandshakes; i++ {
		dial(netip.AddrFrom4([4]byte{127, 0, byte(100 + i/15), byte(1 + i%15/maxConnsPerIP)}))
		n++
	}
	waitCount(maxMuxHandshakes)
	before = m.Stats().Evicted
	dial(netip.MustParseAddr("127.0.99.1"))
	testutil.WaitFor(t, 5*time.Second, "an eviction in the full budget", func() bool { return m.Stats().Evicted > before })
	if total, _, _ := counts(one); total != maxMuxHandshakes {
		t.Fatalf("%d handshakes in progress, bound %d", total, maxMuxHandshakes)
	}

	// An honest peer gets in while the slowloris is still dripping and
	// every slot is taken.
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	p, err := adversary.DialPeer(ctx, netip.MustParseAddr("127.0.54.3"), addr, a.Info.InfoHash, adversary.RandomID())
	if err != nil {
		t.Fatalf("an honest peer with every slot taken: %v", err)
	}
	p.Close()
	for _, r := range drip.Report() {
		if !r.Closed && r.Sent == 68 {
			t.Fatal("a drip finished its handshake: the test's drip is too fast")
		}
	}

	// Every handshake is over by handshakeTimeout, the slowloris's too.
	waitHandshakesIdle(t, m)
	testutil.WaitFor(t, 5*time.Second, "the slowloris's connections to be closed", func() bool {
		for _, r := range drip.Report() {
			if !r.Closed {
				return false
			}
		}
		return true
	})
}

// A torrent that does not Accept does not hold the Mux up: at most
// muxAcceptQueue connections wait for it, the others are closed, and
// another torrent behind the same Mux is served meanwhile.
func TestMuxAcceptQueueBound(t *testing.T) {
	src, a, _ := twoContents(t)
	m := newMux(t, "127.0.56.1", EncryptPrefer)
	stuck := metadata.InfoHash{0x5c}
	ln, err := m.Listener(stuck) // never accepted from
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seedBehind(t, m, a, src, EncryptPrefer)
	addr := muxAddr(m)
	const extra = 3
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Each from its own /24: 19 handshakes from one network at once would
	// meet maxHandshakesPerNet (16) before the accept queue.
	for i := range muxAcceptQueue + extra {
		local := netip.AddrFrom4([4]byte{127, 156, byte(10 + i), 10})
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
		c, err := d.Dial("tcp4", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(adversary.Handshake(stuck, adversary.RandomID()).Append(nil)); err != nil {
			t.Fatal(err)
		}
	}
	// A connection the Mux never routed would be dropped at its
	// handshakeTimeout and fail the split below, so the wait may be as
	// long: half of it was too short under -race on a loaded machine.
	testutil.WaitFor(t, handshakeTimeout, "the Mux to route, drop or refuse every connection", func() bool {
		st := m.Stats()
		return st.Routed+st.Dropped+st.Failed+st.OverBudget == muxAcceptQueue+extra
	})
	if st := m.Stats(); st.Routed != muxAcceptQueue || st.Dropped != extra {
		t.Fatalf("Mux stats %+v: want %d queued, %d dropped", st, muxAcceptQueue, extra)
	}
	l := ln.(*muxListener)
	if n := len(l.ch); n != muxAcceptQueue {
		t.Fatalf("%d connections queued, bound %d", n, muxAcceptQueue)
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	p, err := adversary.DialPeer(ctx, netip.MustParseAddr("127.0.56.2"), addr, a.Info.InfoHash, adversary.RandomID())
	if err != nil {
		t.Fatalf("the other torrent was not served: %v", err)
	}
	p.Close()
	// Closing the listener closes what waited for it.
	ln.Close()
	for i, c := range conns[:muxAcceptQueue] {
		if !closedSoon(c, 5*time.Second) {
			t.Fatalf("queued connection %d not closed with its listener", i)
		}
	}
}

// A virtual listener registers its info-hash once; closing it (a paused
// torrent) unregisters it, and a new one (resumed) gets the connections.
func TestMuxListenerReregister(t *testing.T) {
	src, a, _ := twoContents(t)
	m := newMux(t, "127.0.57.1", EncryptPrefer)
	ih := a.Info.InfoHash
	ln, err := m.Listener(ih)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Listener(ih); err == nil {
		t.Fatal("an info-hash registered twice")
	}
	if addrOf(ln.Addr()) != muxAddr(m) {
		t.Fatalf("virtual listener at %v, the Mux at %v", ln.Addr(), muxAddr(m))
	}
	// A torrent runs on it, then stops: its listener is closed.
	tor, err := New(Config{InfoHash: ih, Info: a.Info, Dir: src, Listener: ln, NoDownload: true, Dial: refuseDial})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tor.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed virtual listener: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer dcancel()
	if p, err := adversary.DialPeer(dctx, netip.MustParseAddr("127.0.57.2"), muxAddr(m), ih, adversary.RandomID()); err == nil {
		p.Close()
		t.Fatal("a stopped torrent still answered")
	}
	// Resumed.
	seedBehind(t, m, a, src, EncryptPrefer)
	dst := t.TempDir()
	leech, _ := runTorrent(t, Config{InfoHash: ih, Info: a.Info, Dir: dst, Peers: []netip.AddrPort{muxAddr(m)},
		Dial: boundDial("127.0.57.3")})
	waitDone(t, leech, 30*time.Second)
	sameTree(t, src, dst, "content")
	// After the Mux closes, no listener is given out.
	m.Close()
	if _, err := m.Listener(metadata.InfoHash{1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Listener after Close: %v", err)
	}
}

// A torrent's own Encryption applies behind a Mux that is more lenient:
// in require mode it refuses a plaintext handshake and an MSE one that
// selected a plaintext stream; in off mode, an MSE one.
func TestMuxTorrentEncryptionPolicy(t *testing.T) {
	src, a, b := twoContents(t)
	m := newMux(t, "127.0.58.1", EncryptPrefer)
	req := seedBehind(t, m, a, src, EncryptRequire)
	seedBehind(t, m, b, src, EncryptOff)
	// Each connection from an address of its own: one address may have
	// only maxConnsPerIP handshakes in progress, and under load the Mux
	// may still be finishing the last ones when the next one arrives.
	last := byte(20)
	local := func() netip.Addr { last++; return netip.AddrFrom4([4]byte{127, 0, 58, last}) }
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()

	if p, err := adversary.DialPeer(ctx, local(), muxAddr(m), a.Info.InfoHash, adversary.RandomID()); err == nil {
		p.Close()
		t.Fatal("a torrent in require mode answered a plaintext peer")
	}
	if _, err := adversary.MSEInitiate(ctx, local(), muxAddr(m), a.Info.InfoHash, a.Info.InfoHash, mse.CryptoMethodPlaintext); err == nil {
		t.Fatal("a torrent in require mode answered an MSE peer with a plaintext stream")
	}
	if _, err := adversary.MSEInitiate(ctx, local(), muxAddr(m), a.Info.InfoHash, a.Info.InfoHash, mse.CryptoMethodRC4); err != nil {
		t.Fatalf("a torrent in require mode refused RC4: %v", err)
	}
	if _, err := adversary.MSEInitiate(ctx, local(), muxAddr(m), b.Info.InfoHash, b.Info.InfoHash, mse.AllSupportedCrypto); err == nil {
		t.Fatal("a torrent in off mode answered an MSE peer")
	}
	if p, err := adversary.DialPeer(ctx, local(), muxAddr(m), b.Info.InfoHash, adversary.RandomID()); err != nil {
		t.Fatalf("a torrent in off mode refused a plaintext peer: %v", err)
	} else {
		p.Close()
	}
	// The RC4 connection joins the torrent's peers through its loop, which
	// may not have taken it yet.
	testutil.WaitFor(t, 10*time.Second, "the RC4 peer joined", func() bool { return stats(t, req).TCPConns >= 1 })
	if s := stats(t, req); s.TCPConns != 1 || s.EncryptedPeers > 1 {
		t.Fatalf("the require torrent took %d connections: want only the RC4 one", s.TCPConns)
	}
}

// Two seeds behind one Mux share one upload limit, and their two
// leechers one download limit: every byte is taken from the shared
// buckets, and the torrents together stay within their rate (the
// buckets' accounting, not a clock's measure: what one let through is at
// most its burst plus its rate over the time it ran).
func TestSharedRateLimit(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	const size = 768 << 10
	a := makeContent(t, src, "one", map[string]int{"a.bin": size}, 64<<10)
	b := makeContent(t, src, "two", map[string]int{"b.bin": size + 1}, 64<<10)
	const limit = 2 << 20
	up, down := NewRateLimit(limit), NewRateLimit(limit)
	start := time.Now()
	m := newMux(t, "127.0.59.1", EncryptPrefer)
	var seeds []*Torrent
	for _, mi := range []*metadata.MetaInfo{a, b} {
		ln, err := m.Listener(mi.Info.InfoHash)
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
			NoDownload: true, Dial: refuseDial, UploadLimit: up})
		seeds = append(seeds, seed)
	}
	var leeches []*Torrent
	for i, mi := range []*metadata.MetaInfo{a, b} {
		dst := t.TempDir()
		leech, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst,
			Peers: []netip.AddrPort{muxAddr(m)}, Dial: boundDial(fmt.Sprintf("127.0.59.%d", 10+i)), DownloadLimit: down})
		leeches = append(leeches, leech)
	}
	for _, l := range leeches {
		waitDone(t, l, 30*time.Second)
	}
	elapsed := time.Since(start)
	var uploaded int64
	for _, s := range seeds {
		uploaded += stats(t, s).Uploaded
	}
	total := a.Info.Length + b.Info.Length
	bound := int64(limitBurst(limit)) + int64(float64(limit)*elapsed.Seconds())
	for _, r := range []struct {
		name string
		l    *RateLimit
	}{{"upload", up}, {"download", down}} {
		taken := r.l.taken.Load()
		if taken < total {
			t.Fatalf("%s: %d bytes taken from the shared limit, the leechers got %d", r.name, taken, total)
		}
		if taken > bound {
			t.Fatalf("%s: %d bytes let through in %v, beyond the burst plus the rate (%d)", r.name, taken, elapsed, bound)
		}
	}
	taken := up.taken.Load()
	if taken > uploaded {
		t.Fatalf("%d bytes taken from the shared upload limit, %d uploaded", taken, uploaded)
	}
	// Lifting the limit at run time: nothing waits on it any more.
	up.SetRate(0)
	if up.Rate() != 0 || up.taken.Load() != taken {
		t.Fatal("lifting the limit changed its accounting")
	}
}

// A RateLimit is unlimited when nil or at 0, and its rate changes at run
// time: the bucket's rate and depth follow, and a lifted limit lets a
// wait through at once whatever its burst.
func TestRateLimitSetRate(t *testing.T) {
	var nilLimit *RateLimit
	nilLimit.SetRate(5)
	if nilLimit.Rate() != 0 || (limits{shared: nilLimit}).on() {
		t.Fatal("a nil RateLimit limits")
	}
	r := NewRateLimit(0)
	if r.Rate() != 0 || (limits{shared: r}).on() {
		t.Fatal("a RateLimit at 0 limits")
	}
	closed := make(chan struct{})
	if err := (limits{shared: r}).wait(1<<30, closed, nil); err != nil {
		t.Fatal(err)
	}
	r.SetRate(1 << 20)
	if r.Rate() != 1<<20 || r.l.Burst() != limitBurst(1<<20) || !(limits{shared: r}).on() {
		t.Fatalf("rate %d burst %d after SetRate(1 MiB)", r.Rate(), r.l.Burst())
	}
	if got := (limits{own: newLimiter(4 << 20), shared: r}).rate(); got != 1<<20 {
		t.Fatalf("the lower of 4 MiB/s and 1 MiB/s is %d", got)
	}
	// A wait for far more than the bucket holds ends when the
	// connection closes, and what it took is not counted.
	before := r.taken.Load()
	close(closed)
	if err := (limits{shared: r}).wait(64<<20, closed, nil); !errors.Is(err, errConnClosed) {
		t.Fatalf("wait on a closed connection: %v", err)
	}
	if r.taken.Load() != before {
		t.Fatal("an abandoned wait was counted")
	}
	r.SetRate(-1)
	if r.Rate() != 0 {
		t.Fatal("a negative rate did not lift the limit")
	}
}

// Progress: nothing before the metadata; after it, the verified pieces
// and, per file (in Info().Files order), the bytes of them, which for a
// complete torrent are the files' lengths.
func TestProgress(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	magnet, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: t.TempDir(), Dial: refuseDial})
	p, err := magnet.Progress(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p.Pieces != nil || p.FileDone != nil {
		t.Fatalf("progress before metadata: %+v", p)
	}

	// A partial seed: one file's bytes are wrong, so the pieces over it
	// fail their hash.
	part := t.TempDir()
	copyTree(t, src, part, "content")
	bad := filepath.Join(part, "content", "sub", "b.bin")
	if err := os.WriteFile(bad, make([]byte, testFiles["sub/b.bin"]), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir string
		full      bool
	}{{"complete", src, true}, {"partial", part, false}} {
		t.Run(tc.name, func(t *testing.T) {
			tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: tc.dir, NoDownload: true, Dial: refuseDial})
			var p Progress
			testutil.WaitFor(t, 10*time.Second, "the pieces on disk to be checked", func() bool {
				p, err = tor.Progress(t.Context())
				s := stats(t, tor)
				return err == nil && s.HaveInfo && (s.Have == s.Pieces || !tc.full && s.Have > 0)
			})
			info := tor.Info()
			if len(p.Pieces) != info.NumPieces() || len(p.FileDone) != len(info.Files) {
				t.Fatalf("%d pieces, %d files: want %d, %d", len(p.Pieces), len(p.FileDone), info.NumPieces(), len(info.Files))
			}
			// Byte by byte, the slow way.
			want := make([]int64, len(info.Files))
			for i, f := range info.Files {
				for off := f.Offset; off < f.Offset+f.Length; off++ {
					if p.Pieces[off/info.PieceLength] {
						want[i]++
					}
				}
			}
			have := 0
			for i, f := range info.Files {
				if p.FileDone[i] != want[i] {
					t.Fatalf("file %v: %d bytes done, want %d", f.Path, p.FileDone[i], want[i])
				}
				if tc.full && p.FileDone[i] != f.Length {
					t.Fatalf("complete torrent, file %v: %d of %d bytes done", f.Path, p.FileDone[i], f.Length)
				}
			}
			for _, ok := range p.Pieces {
				if ok {
					have++
				}
			}
			if s := stats(t, tor); have != s.Have {
				t.Fatalf("Progress has %d pieces, Stats %d", have, s.Have)
			}
			if !tc.full && have == len(p.Pieces) {
				t.Fatal("the partial seed has every piece")
			}
		})
	}
}

// FuzzMuxRoute feeds a Mux's router the bytes an incoming connection
// sends: it never panics, and it hands a torrent only a connection whose
// handshake names that torrent.
func FuzzMuxRoute(f *testing.F) {
	ih := metadata.InfoHash{7}
	f.Add(adversary.Handshake(ih, adversary.RandomID()).Append(nil))
	f.Add(adversary.Handshake([20]byte{8}, adversary.RandomID()).Append(nil))
	f.Add([]byte(btProtocol + "\x00\x00\x00\x00\x00\x10\x00\x05"))
	f.Add(adversary.MSEJunkKey())
	f.Add([]byte{19})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, mode := range []Encryption{EncryptPrefer, EncryptRequire, EncryptOff} {
			m := NewMux(MuxConfig{Encryption: mode})
			ln, err := m.Listener(ih)
			if err != nil {
				t.Fatal(err)
			}
			err = m.route(&fuzzConn{r: bytes.NewReader(in)}, nil)
			l := ln.(*muxListener)
			if err == nil {
				if len(l.ch) != 1 {
					t.Fatal("routed, but not queued")
				}
				c := <-l.ch
				if c.crypto == 0 && (mode == EncryptRequire || !isPlainHandshake(in)) {
					t.Fatalf("plaintext routed under %v: %q", mode, in)
				}
				h, perr := wire.ParseHandshake(c.pending)
				if perr != nil || h.InfoHash != ih {
					t.Fatalf("routed a handshake for %x (%v)", h.InfoHash, perr)
				}
			} else if len(l.ch) != 0 {
				t.Fatal("refused, but queued")
			}
			m.Close()
		}
	})
}

// Close cuts short the handshakes in progress and waits for them: no
// goroutine of the Mux outlives it, and their connections are closed.
func TestMuxCloseEndsHandshakes(t *testing.T) {
	m := NewMux(MuxConfig{Listeners: []net.Listener{listen4(t, "127.0.53.101")}})
	var silent []net.Conn
	for i := range maxConnsPerIP {
		local := netip.AddrFrom4([4]byte{127, 0, 53, byte(110 + i)})
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
		c, err := d.Dial("tcp4", muxAddr(m).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	testutil.WaitFor(t, 5*time.Second, "the handshakes to start", func() bool {
		m.hs.mu.Lock()
		defer m.hs.mu.Unlock()
		return m.hs.total == maxConnsPerIP
	})
	closed := make(chan struct{})
	go func() {
		m.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(handshakeTimeout / 2):
		t.Fatal("Close waited for the silent peers' handshakes")
	}
	m.hs.mu.Lock()
	total := m.hs.total
	m.hs.mu.Unlock()
	if total != 0 {
		t.Fatalf("%d handshakes still counted after Close", total)
	}
	for i, c := range silent {
		if !closedSoon(c, 5*time.Second) {
			t.Fatalf("silent connection %d still open after Close", i)
		}
	}
}
