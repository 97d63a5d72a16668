package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"node/cmd/node/api"
	tu "node/internal/testutil"
	"node/metadata"
	"node/peer"
)

// withMux gives the harness's torrents one listener, a Mux on
// 127.0.<subnet>.100, closed after the daemon stops; it returns the
// port's address.
func withMux(t *testing.T, subnet int, o *harnessOpts) (*peer.Mux, netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.%d.100:0", subnet))
	if err != nil {
		t.Fatal(err)
	}
	m := peer.NewMux(peer.MuxConfig{Listeners: []net.Listener{ln}, Encryption: peer.EncryptOff})
	t.Cleanup(func() { m.Close() }) // registered first: runs after the daemon's
	mod := o.mod
	o.mod = func(c *Config) {
		c.Listen, c.Mux = nil, m
		if mod != nil {
			mod(c)
		}
	}
	return m, ln.Addr().(*net.TCPAddr).AddrPort()
}

// leech fetches mi from addr into a new directory and waits for it.
func leech(t *testing.T, mi *metadata.MetaInfo, addr netip.AddrPort) string {
	t.Helper()
	dst := t.TempDir()
	tor := runTorrent(t, peer.Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst, Peers: []netip.AddrPort{addr}, Encryption: peer.EncryptOff})
	select {
	case <-tor.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the leecher of %s did not complete", mi.Info.Name)
	}
	return dst
}

func sameContent(t *testing.T, a, b string) {
	t.Helper()
	err := filepath.WalkDir(a, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || string(x) != string(y) {
			return fmt.Errorf("%s differs (%v)", rel, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Torrents behind one Mux take their peers on its one port; a paused and
// resumed torrent gets a new virtual listener (the old one closed with
// its session) and takes peers again; Get shows the piece map and each
// file's verified bytes, running and paused; the Mux's counts reach the
// metrics.
func TestMuxPauseResumeAndPieceMap(t *testing.T) {
	o := harnessOpts{}
	m, addr := withMux(t, 185, &o)
	h := newHarness(t, 185, o)
	a := content(t, h.dir, "a", 11, map[string]int{"x.bin": 100 << 10}, 16<<10)
	b := content(t, h.dir, "b", 12, map[string]int{"y.bin": 50 << 10, "z/w.bin": 30 << 10}, 16<<10)
	for _, mi := range []*metadata.MetaInfo{a, b} {
		if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, mi := range []*metadata.MetaInfo{a, b} {
		td := h.waitState(mi.Info.InfoHash, 20*time.Second, api.StateSeeding)
		if want := strings.Repeat("1", mi.Info.NumPieces()); pieceString(td.PieceBuckets) != want {
			t.Fatalf("%s: piece map %q, want %q", mi.Info.Name, pieceString(td.PieceBuckets), want)
		}
		for _, f := range td.Files {
			if f.Done != f.Length {
				t.Fatalf("%s: file %s done %d of %d", mi.Info.Name, f.Path, f.Done, f.Length)
			}
		}
		sameContent(t, filepath.Join(h.dir, mi.Info.Name), filepath.Join(leech(t, mi, addr), mi.Info.Name))
	}

	ih := a.Info.InfoHash
	if _, err := h.d.Pause(context.Background(), ih); err != nil {
		t.Fatal(err)
	}
	if td := h.get(ih); td.State != api.StatePaused || pieceString(td.PieceBuckets) != strings.Repeat("1", a.Info.NumPieces()) || td.Files[0].Done != td.Files[0].Length {
		t.Fatalf("paused: %s, piece map %q, files %+v", td.State, pieceString(td.PieceBuckets), td.Files)
	}
	before := m.Stats()
	// Paused, the port no longer knows the torrent: a peer asking for it
	// is turned away.
	tor := runTorrent(t, peer.Config{InfoHash: ih, Info: a.Info, Dir: t.TempDir(), Peers: []netip.AddrPort{addr}, Encryption: peer.EncryptOff})
	tu.WaitFor(t, 20*time.Second, "the paused torrent's peer turned away", func() bool { return m.Stats().Unknown > before.Unknown })
	_ = tor
	if _, err := h.d.Resume(context.Background(), ih); err != nil {
		t.Fatal(err)
	}
	h.waitState(ih, 20*time.Second, api.StateSeeding)
	sameContent(t, filepath.Join(h.dir, "a"), filepath.Join(leech(t, a, addr), "a"))

	s := h.d.MetricsStats()
	ms := m.Stats()
	if s.Accepted != uint64(ms.Accepted) || s.Incoming[0] != uint64(ms.Routed) || s.Incoming[3] != uint64(ms.Unknown) || ms.Routed < 3 {
		t.Fatalf("metrics %d accepted %v by outcome; the Mux says %+v", s.Accepted, s.Incoming, ms)
	}
}

// A torrent with part of its data shows that part: a '1' for each piece
// of the file that is there, a '0' for the missing file's, and each
// file's verified bytes.
func TestGetPieceMapPartial(t *testing.T) {
	h := newHarness(t, 186, harnessOpts{})
	const piece = 16 << 10
	mi := content(t, h.dir, "part", 13, map[string]int{"a.bin": 4 * piece, "b.bin": 3 * piece}, piece)
	if err := os.Remove(filepath.Join(h.dir, "part", "b.bin")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi)}); err != nil {
		t.Fatal(err)
	}
	var td api.TorrentDetail
	tu.WaitFor(t, 20*time.Second, "the check of the data there", func() bool {
		td = h.get(mi.Info.InfoHash)
		return pieceString(td.PieceBuckets) == "1111000"
	})
	if td.FilesTotal != 2 {
		t.Fatalf("files_total %d, want 2", td.FilesTotal)
	}
	done := map[string]int64{}
	for _, f := range td.Files {
		done[f.Path] = f.Done
	}
	if done["part/a.bin"] != 4*piece || done["part/b.bin"] != 0 {
		t.Fatalf("files %+v", td.Files)
	}
	// A torrent unknown to the daemon.
	if _, err := h.d.Get(context.Background(), metadata.InfoHash{1}); err != api.ErrNotFound {
		t.Fatalf("Get of an unknown torrent: %v", err)
	}
}

// The upload limit is one bucket that all the daemon's torrents share:
// what two leechers took from two torrents went through it, and no more
// than its rate allows in the time it took (its burst aside).
func TestGlobalRateLimitShared(t *testing.T) {
	const limit = 1 << 20
	o := harnessOpts{mod: func(c *Config) { c.MaxUploadRate = limit }}
	_, addr := withMux(t, 187, &o)
	h := newHarness(t, 187, o)
	a := content(t, h.dir, "a", 14, map[string]int{"x.bin": 384 << 10}, 32<<10)
	b := content(t, h.dir, "b", 15, map[string]int{"y.bin": 384<<10 + 1}, 32<<10)
	for _, mi := range []*metadata.MetaInfo{a, b} {
		if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi)}); err != nil {
			t.Fatal(err)
		}
		h.waitState(mi.Info.InfoHash, 20*time.Second, api.StateSeeding)
	}
	if h.d.up.Rate() != limit || h.d.down.Rate() != 0 {
		t.Fatalf("limits up %d down %d", h.d.up.Rate(), h.d.down.Rate())
	}
	start := time.Now()
	done := make(chan string, 2)
	for _, mi := range []*metadata.MetaInfo{a, b} {
		go func() {
			dst := t.TempDir()
			tor, err := peer.New(peer.Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst, Peers: []netip.AddrPort{addr}, Encryption: peer.EncryptOff})
			if err != nil {
				done <- err.Error()
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() {
				defer close(ran)
				_ = tor.Run(ctx)
			}()
			select {
			case <-tor.Done():
				done <- ""
			case <-time.After(30 * time.Second):
				done <- mi.Info.Name + " did not complete"
			}
			cancel()
			<-ran
		}()
	}
	for range 2 {
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
	elapsed := time.Since(start)
	taken := h.d.up.Taken()
	total := a.Info.Length + b.Info.Length
	// The burst is a tenth of the rate (see peer.NewRateLimit); the
	// bound allows twice that.
	bound := int64(float64(limit)*elapsed.Seconds()) + limit/5
	if taken < total || taken > bound {
		t.Fatalf("%d bytes through the shared upload limit in %v for %d fetched; at most %d", taken, elapsed, total, bound)
	}
}

// pieceString spells piece buckets as a string: '1' a verified bucket,
// '0' one with nothing verified, '.' one in between.
func pieceString(b []float64) string {
	var sb strings.Builder
	for _, v := range b {
		switch v {
		case 1:
			sb.WriteByte('1')
		case 0:
			sb.WriteByte('0')
		default:
			sb.WriteByte('.')
		}
	}
	return sb.String()
}
