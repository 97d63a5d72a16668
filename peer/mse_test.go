package peer

import (
	"bytes"
	"context"
	"errors"
	"expvar"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/mse"

	"node/internal/adversary"
	"node/internal/peertest"
	"node/internal/testutil"
	"node/metadata"
)

// tap records what crosses the sockets it wraps, so that a test can see
// whether a plaintext handshake or the torrent's data went over the wire
// in clear.
type tap struct {
	mu    sync.Mutex
	conns []*tapConn
}

type tapConn struct {
	net.Conn
	mu      sync.Mutex
	in, out bytes.Buffer
}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.in.Write(b[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	c.out.Write(b[:n])
	c.mu.Unlock()
	return n, err
}

func (tp *tap) wrap(nc net.Conn) net.Conn {
	c := &tapConn{Conn: nc}
	tp.mu.Lock()
	tp.conns = append(tp.conns, c)
	tp.mu.Unlock()
	return c
}

// dial is a Config.Dial through the tap, from ip.
func (tp *tap) dial(ip string) func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
	d := boundDial(ip)
	return func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
		nc, err := d(ctx, a)
		if err != nil {
			return nil, err
		}
		return tp.wrap(nc), nil
	}
}

// listen is a listener on ip whose connections go through the tap.
func (tp *tap) listen(t testing.TB, ip string) net.Listener {
	return tapListener{Listener: listen4(t, ip), tp: tp}
}

type tapListener struct {
	net.Listener
	tp *tap
}

func (l tapListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.tp.wrap(nc), nil
}

// streams are the bytes each tapped connection carried, both ways.
type tapped struct{ in, out []byte }

func (tp *tap) streams() []tapped {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []tapped
	for _, c := range tp.conns {
		c.mu.Lock()
		out = append(out, tapped{in: bytes.Clone(c.in.Bytes()), out: bytes.Clone(c.out.Bytes())})
		c.mu.Unlock()
	}
	return out
}

// noneInClear fails the test unless tp tapped a connection, and none
// began with a plaintext handshake or carried sample in clear.
func (tp *tap) noneInClear(t testing.TB, sample []byte) {
	t.Helper()
	ss := tp.streams()
	if len(ss) == 0 {
		t.Fatal("no connection tapped")
	}
	for i, s := range ss {
		if s.plain() || s.carries(sample) {
			t.Fatalf("connection %d: plaintext handshake %v, content in clear %v", i, s.plain(), s.carries(sample))
		}
	}
}

// plain reports whether s opened with a plaintext BitTorrent handshake,
// either way.
func (s tapped) plain() bool {
	return isPlainHandshake(s.in) || isPlainHandshake(s.out)
}

// carries reports whether s carried sample in clear, either way.
func (s tapped) carries(sample []byte) bool {
	return bytes.Contains(s.in, sample) || bytes.Contains(s.out, sample)
}

// contentSample is 64 bytes from the middle of a content file: random, so
// found on the wire only if the data went in clear.
func contentSample(t testing.TB, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "content", "sub", "b.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b[len(b)/2 : len(b)/2+64]
}

// newObfuscatingAnacrolix starts an anacrolix client on ip without a DHT,
// with the given header obfuscation policy; with seed it serves mi from
// dir, verified.
func newObfuscatingAnacrolix(t testing.TB, ip, dir string, mi *metadata.MetaInfo, seed bool, policy torrent.HeaderObfuscationPolicy) (*torrent.Client, *torrent.Torrent) {
	t.Helper()
	cfg, err := peertest.ClientConfig(ip, dir, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoDHT = true
	cfg.HeaderObfuscationPolicy = policy
	cfg.DefaultStorage = plainStorage{dir: dir, complete: seed}
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		<-cl.Closed()
		waitAnacrolixGone(5 * time.Second)
	})
	tr, err := cl.AddTorrent(toAnacrolix(t, mi))
	if err != nil {
		t.Fatal(err)
	}
	if seed {
		waitAnacrolixComplete(t, tr, 20*time.Second)
	}
	return cl, tr
}

var (
	anacrolixRequiresMSE = torrent.HeaderObfuscationPolicy{Preferred: true, RequirePreferred: true}
	anacrolixRefusesMSE  = torrent.HeaderObfuscationPolicy{Preferred: false, RequirePreferred: true}
)

// An anacrolix seeder that accepts only MSE: we fetch from it in require
// mode (RC4 both ways, nothing in clear on the wire) and in prefer mode
// (MSE first; anacrolix selects plaintext after the obfuscated header
// when both are offered, as libtorrent does by default).
func TestMSEAnacrolixRequiresWeFetch(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	sample := contentSample(t, src)
	const seedIP = "127.0.120.1"
	cl, _ := newObfuscatingAnacrolix(t, seedIP, src, mi, true, anacrolixRequiresMSE)
	seedAddr := anacrolixPeerAddr(t, cl, seedIP)

	for i, mode := range []Encryption{EncryptRequire, EncryptPrefer} {
		t.Run(mode.String(), func(t *testing.T) {
			ip := fmt.Sprintf("127.0.120.%d", 11+i)
			var tp tap
			dst := t.TempDir()
			tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: listen4(t, ip),
				Peers: []netip.AddrPort{seedAddr}, Dial: tp.dial(ip), Encryption: mode})
			waitDone(t, tor, 30*time.Second)
			sameTree(t, src, dst, "content")
			ss := tp.streams()
			if len(ss) == 0 {
				t.Fatal("no connection tapped")
			}
			for i, s := range ss {
				if s.plain() {
					t.Fatalf("connection %d opened with a plaintext handshake", i)
				}
				if mode == EncryptRequire && s.carries(sample) {
					t.Fatalf("connection %d carried the content in clear under require", i)
				}
			}
		})
	}
}

// We seed (prefer, the default); an anacrolix leecher that accepts only
// MSE fetches from us. It offers RC4 and plaintext, and we select RC4: the
// content never crosses the wire in clear.
func TestMSEWeSeedAnacrolixRequires(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	sample := contentSample(t, src)
	var tp tap
	ln := tp.listen(t, "127.0.121.1")
	seedAddr := addrOf(ln.Addr())
	seeder, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
		NoDownload: true, Dial: refuseDial, UploadSlots: 4})

	dst := t.TempDir()
	_, tr := newObfuscatingAnacrolix(t, "127.0.121.2", dst, mi, false, anacrolixRequiresMSE)
	tr.AddPeers([]torrent.PeerInfo{{Addr: torrentAddr(seedAddr), Trusted: true}})
	tr.DownloadAll()
	waitAnacrolixComplete(t, tr, 30*time.Second)
	sameTree(t, src, dst, "content")
	tp.noneInClear(t, sample)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s, err := seeder.Stats(ctx); err != nil || s.Uploaded < mi.Info.Length {
		t.Fatalf("seeder stats %+v, %v: want Uploaded ≥ %d", s, err, mi.Info.Length)
	}
}

// An anacrolix seeder that refuses MSE: in require mode we get nothing,
// never send a plaintext handshake, and the torrent goes on running with
// no peer; in prefer mode the failed MSE dial is followed by a plaintext
// one, which completes, and the address is remembered.
func TestMSEAnacrolixRefuses(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	const seedIP = "127.0.122.1"
	cl, _ := newObfuscatingAnacrolix(t, seedIP, src, mi, true, anacrolixRefusesMSE)
	seedAddr := anacrolixPeerAddr(t, cl, seedIP)

	t.Run("require", func(t *testing.T) {
		const ip = "127.0.122.11"
		var tp tap
		tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: t.TempDir(), Listener: listen4(t, ip),
			Peers: []netip.AddrPort{seedAddr}, Dial: tp.dial(ip), Encryption: EncryptRequire})
		// Its dial has failed once the torrent no longer counts it.
		testutil.WaitFor(t, 15*time.Second, "the dial to end", func() bool {
			s, err := tor.Stats(context.Background())
			return err == nil && len(tp.streams()) > 0 && s.Dialing == 0
		})
		s, err := tor.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.Peers != 0 || s.Downloaded != 0 || s.HaveInfo {
			t.Fatalf("stats %+v: want no peer and nothing downloaded", s)
		}
		for i, st := range tp.streams() {
			if st.plain() {
				t.Fatalf("connection %d: a plaintext handshake under require", i)
			}
		}
		select {
		case <-tor.Done():
			t.Fatal("done without data")
		default:
		}
	})
	t.Run("prefer", func(t *testing.T) {
		const ip = "127.0.122.12"
		var tp tap
		dst := t.TempDir()
		tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: listen4(t, ip),
			Peers: []netip.AddrPort{seedAddr}, Dial: tp.dial(ip)})
		waitDone(t, tor, 30*time.Second)
		sameTree(t, src, dst, "content")
		ss := tp.streams()
		if len(ss) < 2 || ss[0].plain() || !ss[1].plain() {
			t.Fatalf("%d connections: want an MSE one, then a plaintext one", len(ss))
		}
		if !tor.plain.has(seedAddr, time.Now()) {
			t.Fatal("the seeder is not remembered as refusing MSE")
		}
		if got := tor.dialCrypto(seedAddr); got != 0 {
			t.Fatalf("the next dial to it offers %d, want plaintext", got)
		}
	})
}

// Two of our nodes, both in require mode: the fetch completes, both
// connections ends count the peer as encrypted while it runs, and nothing
// crosses the wire in clear.
func TestMSENodeToNodeRequire(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	sample := contentSample(t, src)
	var tp tap
	ln := tp.listen(t, "127.0.123.1")
	// A slow seeder, so that the connection lives long enough to be
	// seen in the stats.
	seeder, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
		NoDownload: true, Dial: refuseDial, Encryption: EncryptRequire, MaxUploadRate: 1 << 20})
	leecher, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: listen4(t, "127.0.123.2"),
		Peers: []netip.AddrPort{addrOf(ln.Addr())}, Dial: tp.dial("127.0.123.2"), Encryption: EncryptRequire})
	testutil.WaitFor(t, 20*time.Second, "both ends to count an encrypted peer", func() bool {
		a, err1 := seeder.Stats(context.Background())
		b, err2 := leecher.Stats(context.Background())
		return err1 == nil && err2 == nil && a.EncryptedPeers == 1 && b.EncryptedPeers == 1
	})
	waitDone(t, leecher, 30*time.Second)
	sameTree(t, src, dst, "content")
	for i, s := range tp.streams() {
		if s.plain() || s.carries(sample) {
			t.Fatalf("connection %d: plaintext handshake %v, content in clear %v", i, s.plain(), s.carries(sample))
		}
	}
}

// Our prefer-mode leecher and our seeder with encryption off: the MSE
// dial is refused, the plaintext one completes.
func TestMSEPreferFallsBackToOff(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ln := listen4(t, "127.0.124.1")
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
		NoDownload: true, Dial: refuseDial, Encryption: EncryptOff})
	var tp tap
	leecher, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: listen4(t, "127.0.124.2"),
		Peers: []netip.AddrPort{addrOf(ln.Addr())}, Dial: tp.dial("127.0.124.2")})
	waitDone(t, leecher, 30*time.Second)
	sameTree(t, src, dst, "content")
	if ss := tp.streams(); len(ss) < 2 || ss[0].plain() || !ss[1].plain() {
		t.Fatalf("%d connections: want an MSE one, then a plaintext one", len(ss))
	}
}

// A peer that accepts our dial and says nothing: the MSE handshake
// gives up at the handshake timeout, and no plaintext dial follows at
// once (it would sit through a second timeout).
func TestMSEDialSilentPeer(t *testing.T) {
	t.Parallel()
	silent := listen4(t, "127.0.124.11")
	defer silent.Close()
	var accepted atomic.Int32
	go func() {
		for {
			nc, err := silent.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer nc.Close()
				_, _ = io.Copy(io.Discard, nc)
			}()
		}
	}()
	addr := addrOf(silent.Addr())
	start := time.Now()
	tor, _ := runTorrent(t, Config{InfoHash: metadata.InfoHash{9}, Dir: t.TempDir(), Listener: listen4(t, "127.0.124.12"),
		Peers: []netip.AddrPort{addr}, Dial: boundDial("127.0.124.12"), hsTimeout: testHandshakeTimeout})
	testutil.WaitFor(t, testHandshakeTimeout+5*time.Second, "the dial to end", func() bool {
		s, err := tor.Stats(context.Background())
		return err == nil && accepted.Load() > 0 && s.Dialing == 0
	})
	if took := time.Since(start); took > testHandshakeTimeout+2*time.Second {
		t.Fatalf("the dial took %v, beyond the handshake timeout", took)
	}
	if n := accepted.Load(); n != 1 || tor.plain.has(addr, time.Now()) {
		t.Fatalf("%d connections, remembered as plaintext-only %v: want one MSE attempt and nothing more", n, tor.plain.has(addr, time.Now()))
	}
}

// What each mode lets in: a plaintext handshake, an MSE initiator
// offering RC4, one offering only plaintext, and one naming a torrent we
// do not serve.
func TestMSEIncomingModes(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 100_000}, 64<<10)
	ih := mi.Info.InfoHash
	other := metadata.InfoHash{1, 2, 3}
	type want struct{ plain, rc4, plainOnly bool }
	for i, tc := range []struct {
		mode Encryption
		want want
	}{
		{EncryptPrefer, want{plain: true, rc4: true, plainOnly: true}},
		{EncryptRequire, want{plain: false, rc4: true, plainOnly: false}},
		{EncryptOff, want{plain: true, rc4: false, plainOnly: false}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			ip := fmt.Sprintf("127.0.125.%d", 1+i)
			ln := listen4(t, ip)
			addr := addrOf(ln.Addr())
			runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true,
				Dial: refuseDial, Encryption: tc.mode})
			local := netip.MustParseAddr(fmt.Sprintf("127.0.125.%d", 101+i))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			p, err := adversary.DialPeer(ctx, local, addr, ih, adversary.RandomID())
			if err == nil {
				p.Conn.Close()
			}
			if (err == nil) != tc.want.plain {
				t.Errorf("plaintext handshake: %v, want accepted %v", err, tc.want.plain)
			}
			m, err := adversary.MSEInitiate(ctx, local, addr, ih, ih, mse.AllSupportedCrypto)
			if (err == nil) != tc.want.rc4 || (err == nil && m != mse.CryptoMethodRC4) {
				t.Errorf("MSE offering both: method %d, %v; want accepted %v, with RC4", m, err, tc.want.rc4)
			}
			m, err = adversary.MSEInitiate(ctx, local, addr, ih, ih, mse.CryptoMethodPlaintext)
			if (err == nil) != tc.want.plainOnly || (err == nil && m != mse.CryptoMethodPlaintext) {
				t.Errorf("MSE offering plaintext only: method %d, %v; want accepted %v", m, err, tc.want.plainOnly)
			}
			if _, err := adversary.MSEInitiate(ctx, local, addr, other, ih, mse.AllSupportedCrypto); err == nil {
				t.Error("MSE naming a torrent we do not serve was accepted")
			}
		})
	}
}

// Hostile MSE initiators: junk where the key should be, followed by junk
// forever; a key followed by endless padding; a key, then silence; junk
// trickling in too short to be a key. The first two are dropped as soon
// as the bounded search for the key hash gives up, long before the
// handshake timeout; the silent ones at the handshake timeout. None
// becomes a peer, and an honest peer still gets through meanwhile.
func TestMSEHostileInitiators(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 100_000}, 64<<10)
	ih := mi.Info.InfoHash
	ln := listen4(t, "127.0.126.1")
	addr := addrOf(ln.Addr())
	tor, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true, Dial: refuseDial,
		hsTimeout: testHandshakeTimeout})

	type attack struct {
		name    string
		opening []byte
		fast    bool
	}
	attacks := []attack{
		{name: "junk key, endless junk", opening: adversary.MSEJunkKey(), fast: true},
		{name: "key, endless padding", opening: adversary.MSEJunkKey(), fast: true},
		{name: "key, then silence", opening: adversary.MSEJunkKey()},
		{name: "short junk, then silence", opening: []byte("GET / HTTP/1.0\r\n")},
	}
	ctx, cancel := context.WithTimeout(context.Background(), testHandshakeTimeout+10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]struct {
		took time.Duration
		sent int64
		err  error
	}, len(attacks))
	for i, a := range attacks {
		local := netip.MustParseAddr(fmt.Sprintf("127.0.126.%d", 11+i))
		wg.Go(func() {
			r := &results[i]
			switch {
			case i == 0:
				r.took, r.sent, r.err = adversary.MSEOpening(ctx, local, addr, a.opening, adversary.Junk{})
			case i == 1:
				r.took, r.sent, r.err = adversary.MSEOpening(ctx, local, addr, a.opening, adversary.Zeros{})
			default:
				r.took, r.sent, r.err = adversary.MSEOpening(ctx, local, addr, a.opening, nil)
			}
		})
	}
	// Meanwhile an honest MSE peer is served.
	hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
	defer hcancel()
	if _, err := adversary.MSEInitiate(hctx, netip.MustParseAddr("127.0.126.2"), addr, ih, ih, mse.AllSupportedCrypto); err != nil {
		t.Errorf("an honest MSE peer was refused during the attack: %v", err)
	}
	wg.Wait()
	for i, a := range attacks {
		r := results[i]
		t.Logf("%s: dropped after %v, %d bytes written", a.name, r.took.Round(time.Millisecond), r.sent)
		if r.err != nil {
			t.Errorf("%s: %v", a.name, r.err)
			continue
		}
		if a.fast && r.took >= testHandshakeTimeout/2 {
			t.Errorf("%s: dropped after %v, want long before the handshake timeout", a.name, r.took)
		}
		if r.took > testHandshakeTimeout+2*time.Second {
			t.Errorf("%s: dropped after %v, beyond the handshake timeout %v", a.name, r.took, testHandshakeTimeout)
		}
	}
	s, err := tor.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Peers != 0 {
		t.Fatalf("stats %+v: an attacker became a peer", s)
	}
}

// FuzzAcceptCrypto feeds arbitrary opening bytes to the sniffer and, when
// they are not a plaintext handshake, to the MSE receiver: it must return
// (an error, or a connection) without panicking, having read a bounded
// number of bytes.
func FuzzAcceptCrypto(f *testing.F) {
	f.Add([]byte(btProtocol + "\x00\x00\x00\x00\x00\x10\x00\x05"))
	f.Add([]byte("\x13BitTorrent protocoX"))
	f.Add(bytes.Repeat([]byte{0}, 96+512+20))
	f.Add(adversary.MSEJunkKey())
	f.Add([]byte{19})
	ih := metadata.InfoHash{7}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, mode := range []Encryption{EncryptPrefer, EncryptRequire, EncryptOff} {
			nc := &fuzzConn{r: bytes.NewReader(in)}
			c, m, err := acceptCrypto(context.Background(), nc, mode, ih)
			if err == nil && c == nil {
				t.Fatal("no error and no connection")
			}
			if err == nil && m == 0 && !isPlainHandshake(in) {
				t.Fatalf("plaintext accepted without a plaintext handshake: %q", in)
			}
			if err != nil && errors.Is(err, errPlainRefused) && mode != EncryptRequire {
				t.Fatal("plaintext refused outside require mode")
			}
		}
	})
}

// fuzzConn is a net.Conn reading from r and swallowing writes.
type fuzzConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *fuzzConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error)        { return len(b), nil }
func (c *fuzzConn) SetDeadline(time.Time) error        { return nil }
func (c *fuzzConn) Close() error                       { return nil }
func (c *fuzzConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *fuzzConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(t time.Time) error { return nil }

// plainOnly stays within maxPlainOnly.
func TestPlainOnlyBound(t *testing.T) {
	var p plainOnly
	now := time.Now()
	for i := range maxPlainOnly + 100 {
		p.add(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881), now)
	}
	if n := p.len(); n != maxPlainOnly {
		t.Fatalf("%d addresses remembered, want %d", n, maxPlainOnly)
	}
	i := maxPlainOnly + 99
	last := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881)
	if !p.has(last, now.Add(plainOnlyFor-time.Second)) {
		t.Fatal("the newest address was not kept")
	}
	if p.has(last, now.Add(plainOnlyFor)) {
		t.Fatalf("an address was still dialled in plaintext after plainOnlyFor (%v)", plainOnlyFor)
	}
}

func TestParseEncryption(t *testing.T) {
	for _, e := range []Encryption{EncryptPrefer, EncryptRequire, EncryptOff} {
		if got, err := ParseEncryption(e.String()); err != nil || got != e {
			t.Fatalf("%v: %v, %v", e, got, err)
		}
	}
	if _, err := ParseEncryption("yes"); err == nil {
		t.Fatal("yes parsed")
	}
}

// The mse library counts every crypto_provide value it receives in a
// process-wide map, keyed by a 32-bit number the initiator picks; we
// forget the keys beyond the methods that exist, so strangers offering a
// new value on every connection do not grow it.
func TestMSEProvideCountBounded(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 10_000}, 16<<10)
	ih := mi.Info.InfoHash
	ln := listen4(t, "127.0.125.20")
	runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true, Dial: refuseDial})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 40 {
		// Each from an address of its own: one address may have only
		// maxConnsPerIP handshakes in progress, and under load ours may
		// still be finishing the last ones when the next one arrives.
		local := netip.AddrFrom4([4]byte{127, 0, 125, byte(160 + i)})
		provide := mse.CryptoMethodRC4 | mse.CryptoMethod(i+1)<<2
		if m, err := adversary.MSEInitiate(ctx, local, addrOf(ln.Addr()), ih, ih, provide); err != nil || m != mse.CryptoMethodRC4 {
			t.Fatalf("offer %#x: method %d, %v; want RC4", provide, m, err)
		}
	}
	keys := 0
	mseProvides.Do(func(expvar.KeyValue) { keys++ })
	if keys > 4 {
		t.Fatalf("the mse library's count holds %d crypto_provide values, want at most the 4 that exist", keys)
	}
}

// A dial's deadline is a timeout over uTP too, whose library reports it
// with an error of its own.
func TestIsTimeout(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{os.ErrDeadlineExceeded, true},
		{fmt.Errorf("%w: read: %w", errMSE, os.ErrDeadlineExceeded), true},
		{fmt.Errorf("%w: %w", errMSE, libutpTimeout{}), true},
		{fmt.Errorf("%w: %w", errMSE, io.EOF), false},
	} {
		if got := isTimeout(tc.err); got != tc.want {
			t.Errorf("isTimeout(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// libutpTimeout is shaped like go-libutp's deadline error: a net.Error
// that times out, and not os.ErrDeadlineExceeded.
type libutpTimeout struct{}

func (libutpTimeout) Error() string   { return "deadline exceeded" }
func (libutpTimeout) Timeout() bool   { return true }
func (libutpTimeout) Temporary() bool { return false }
