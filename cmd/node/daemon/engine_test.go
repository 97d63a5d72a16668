package daemon

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"node/cmd/node/api"
	"node/metadata"
	"node/peer"
)

// Subnets 127.0.236.x to 127.0.239.x belong to these tests.

// A torrent behind the Mux that fails opening its files gives its
// info-hash back to the Mux: once the cause is gone, Resume runs it.
func TestFailedOpenThenResumeBehindMux(t *testing.T) {
	o := harnessOpts{}
	withMux(t, 236, &o)
	h := newHarness(t, 236, o)
	mi := content(t, h.dir, "c", 11, map[string]int{"a.bin": 64 << 10}, 16<<10)
	ih := mi.Info.InfoHash
	// A file where the torrent's directory should be: opening fails.
	blocked := filepath.Join(t.TempDir(), "blocked")
	if err := os.WriteFile(blocked, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi), Dir: blocked}); err != nil {
		t.Fatal(err)
	}
	td := h.waitState(ih, 20*time.Second, api.StateError)
	t.Logf("failed as expected: %s", td.Error)
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Resume(context.Background(), ih); err != nil {
		t.Fatal(err)
	}
	td = h.waitState(ih, 20*time.Second, api.StateDownloading, api.StateError)
	if td.State == api.StateError {
		t.Fatalf("Resume after the cause is gone: %s", td.Error)
	}
}

// An Add of a torrent being removed is refused until Remove is done (it
// would otherwise have its saved .torrent deleted by the Remove, and be
// lost at the next restart); once Remove returns, it is added and kept.
func TestReAddWhileRemoving(t *testing.T) {
	h := newHarness(t, 237, harnessOpts{})
	mi := content(t, h.dir, "s", 9, map[string]int{"a.bin": 64 << 10}, 16<<10)
	ih := mi.Info.InfoHash
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi)}); err != nil {
		t.Fatal(err)
	}
	h.waitState(ih, 20*time.Second, api.StateSeeding)
	var addErr error
	var hidden bool
	h.d.removingHook = func(metadata.InfoHash) {
		_, addErr = h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi)})
		_, gerr := h.d.Get(context.Background(), ih)
		l, _ := h.d.List(context.Background())
		hidden = errors.Is(gerr, api.ErrNotFound) && len(l) == 0
	}
	if err := h.d.Remove(context.Background(), ih, false); err != nil {
		t.Fatal(err)
	}
	h.d.removingHook = nil
	if !errors.Is(addErr, api.ErrExists) {
		t.Errorf("Add while removing: %v, want ErrExists", addErr)
	}
	if !hidden {
		t.Error("a torrent being removed still shows in Get or List")
	}
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi)}); err != nil {
		t.Fatalf("Add after Remove: %v", err)
	}
	if _, err := os.Stat(h.d.torrentPath(ih)); err != nil {
		t.Fatalf("the re-added torrent's .torrent: %v", err)
	}
	h.stopDaemon()
	h.start(nil)
	if _, err := h.d.Get(context.Background(), ih); err != nil {
		t.Fatalf("after a restart, the re-added torrent: %v", err)
	}
}

// zeroTorrent is a single-file torrent of size zero bytes: a sparse file
// of that size is its complete data, and takes long to check.
func zeroTorrent(t *testing.T, name string, size, plen int64) []byte {
	t.Helper()
	if size%plen != 0 {
		t.Fatal("size must be a multiple of the piece length")
	}
	sum := sha1.Sum(make([]byte, plen))
	pieces := bytes.Repeat(sum[:], int(size/plen))
	return fmt.Appendf(nil, "d4:infod6:lengthi%de4:name%d:%s12:piece lengthi%de6:pieces%d:%see",
		size, len(name), name, plen, len(pieces), pieces)
}

// checkBound bounds Pause and Close of torrents checking their data: a
// bound on a hang (the check stops between two pieces), far above what
// they take.
const checkBound = 5 * time.Second

// Pause and Close do not wait for a check of existing data to finish
// (12 GiB here, sparse): the check stops, the session is gone when Pause
// returns, and Close stops both torrents together.
func TestPauseAndCloseWhileChecking(t *testing.T) {
	h := newHarness(t, 238, harnessOpts{})
	const size = 6 << 30
	var ihs []metadata.InfoHash
	for i := range 2 {
		name := fmt.Sprintf("z%d.bin", i)
		f, err := os.Create(filepath.Join(h.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Skipf("no sparse file of %d bytes here: %v", size, err)
		}
		f.Close()
		v, err := h.d.Add(context.Background(), api.AddRequest{Torrent: zeroTorrent(t, name, size, 4<<20)})
		if err != nil {
			t.Fatal(err)
		}
		var ih metadata.InfoHash
		b, _ := hex.DecodeString(v.InfoHash)
		copy(ih[:], b)
		ihs = append(ihs, ih)
	}
	for _, ih := range ihs {
		h.waitState(ih, 10*time.Second, api.StateChecking)
	}
	t0 := time.Now()
	v, err := h.d.Pause(context.Background(), ihs[0])
	if took := time.Since(t0); err != nil || took > checkBound || v.State != api.StatePaused {
		t.Fatalf("Pause while checking: %v, %s, %v", took, v.State, err)
	}
	h.d.mu.Lock()
	running := h.d.torrents[ihs[0]].run != nil
	h.d.mu.Unlock()
	if running {
		t.Fatal("Pause returned with the session still running")
	}
	if td := h.get(ihs[1]); td.State != api.StateChecking {
		t.Fatalf("the other torrent: %s, want still checking", td.State)
	}
	t0 = time.Now()
	h.stopDaemon()
	if took := time.Since(t0); took > checkBound {
		t.Fatalf("Close while checking took %v", took)
	}
}

// Two readings of one session applied out of order (a stop's and the
// periodic one can cross): the older is ignored, so the session's counts
// do not go back and the totals count each byte once.
func TestSamplesOutOfOrder(t *testing.T) {
	d := &Daemon{torrents: make(map[metadata.InfoHash]*entry), log: zap.NewNop()}
	r := &running{}
	e := &entry{run: r, info: &metadata.Info{}, infoSaved: true}
	older := peer.Stats{Downloaded: 100, Uploaded: 10, Verified: 1}
	newer := peer.Stats{Downloaded: 300, Uploaded: 30, Verified: 3}
	now := time.Now()
	d.applySample(e, r, newer, now)
	d.applySample(e, r, older, now.Add(-time.Second))
	d.applySample(e, r, newer, now.Add(time.Second))
	if e.sess.Downloaded != 300 || e.sess.Uploaded != 30 {
		t.Fatalf("session counts %d/%d, want 300/30", e.sess.Downloaded, e.sess.Uploaded)
	}
	if tot := d.totals; tot.DownloadedBytes != 300 || tot.UploadedBytes != 30 || tot.PiecesVerified != 3 {
		t.Fatalf("totals %d down, %d up, %d verified; want 300, 30, 3", tot.DownloadedBytes, tot.UploadedBytes, tot.PiecesVerified)
	}
}

// Dead magnet links (no peer has their metadata) hold their queue slots
// only for StalledAfter: then the queued torrent starts, and the stalled
// one runs on, shown as before.
func TestStalledDownloadYieldsSlot(t *testing.T) {
	const stalledAfter = 2 * time.Second
	h := newHarness(t, 239, harnessOpts{mod: func(c *Config) {
		c.MaxActiveDownloads = 1
		c.StalledAfter = stalledAfter
	}})
	dead := metadata.InfoHash{0xde, 0xad}
	next := metadata.InfoHash{0xbe, 0xef}
	add := func(ih metadata.InfoHash) {
		t.Helper()
		if _, err := h.d.Add(context.Background(), api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + ih.String()}); err != nil {
			t.Fatal(err)
		}
	}
	add(dead)
	h.waitState(dead, 5*time.Second, api.StateMetadata)
	add(next)
	if td := h.get(next); td.State != api.StateQueued {
		t.Fatalf("the second torrent is %s, want queued behind the first", td.State)
	}
	h.waitState(next, stalledAfter+10*time.Second, api.StateMetadata)
	if td := h.get(dead); td.State != api.StateMetadata {
		t.Fatalf("the stalled torrent is %s, want still fetching its metadata", td.State)
	}
}

// A download is stalled after StalledAfter without progress, not before,
// and a seed never is.
func TestStalledAfter(t *testing.T) {
	d := &Daemon{cfg: Config{StalledAfter: DefaultStalledAfter}}
	now := time.Now()
	e := &entry{progressAt: now.Add(-DefaultStalledAfter + time.Second)}
	if d.stalled(e, now) {
		t.Fatal("stalled before StalledAfter")
	}
	if !d.stalled(e, now.Add(time.Second)) {
		t.Fatal("not stalled at StalledAfter")
	}
	e.rec.Complete = true
	if d.stalled(e, now.Add(time.Hour)) {
		t.Fatal("a seed stalled")
	}
}

// A saved .torrent that cannot be read at start (here a directory in its
// place: a read error that is not "missing", as EACCES or EIO would be)
// keeps its torrent, in error, saved again; once the file is back,
// Resume runs it.
func TestUnreadableSavedTorrentKept(t *testing.T) {
	h := newHarness(t, 237, harnessOpts{})
	mi := content(t, h.dir, "u", 12, map[string]int{"a.bin": 64 << 10}, 16<<10)
	ih := mi.Info.InfoHash
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi), Paused: true}); err != nil {
		t.Fatal(err)
	}
	path := h.d.torrentPath(ih)
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h.stopDaemon()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	h.start(nil)
	td, err := h.d.Get(context.Background(), ih)
	if err != nil {
		t.Fatalf("the torrent with an unreadable .torrent was dropped: %v", err)
	}
	if td.State != api.StateError || td.Error == "" {
		t.Fatalf("state %s (%q), want error with the reason", td.State, td.Error)
	}
	// The file back: Resume reads it and runs the torrent.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := h.d.Resume(context.Background(), ih); err != nil || v.State == api.StateError {
		t.Fatalf("Resume once the file is back: %v, %s (%q)", err, v.State, v.Error)
	}
	h.waitState(ih, 20*time.Second, api.StateSeeding)
	h.stopDaemon()
	h.start(nil)
	if _, err := h.d.Get(context.Background(), ih); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
}

// What a crash leaves of the atomic writes (their temporary files) is
// deleted at the next start; the files themselves, and others, stay.
func TestCrashLeftoversRemoved(t *testing.T) {
	h := newHarness(t, 236, harnessOpts{})
	mi := content(t, h.dir, "l", 13, map[string]int{"a.bin": 16 << 10}, 16<<10)
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi), Paused: true}); err != nil {
		t.Fatal(err)
	}
	h.stopDaemon()
	tdir := filepath.Join(h.state, torrentsDir)
	leftovers := []string{
		filepath.Join(h.state, "."+torrentsFile+".123456"),
		filepath.Join(tdir, "."+mi.Info.InfoHash.String()+".torrent.987654"),
	}
	kept := []string{
		filepath.Join(h.state, torrentsFile),
		h.d.torrentPath(mi.Info.InfoHash),
		filepath.Join(h.state, ".other"),
		filepath.Join(tdir, "notes.txt"),
	}
	for _, p := range append(leftovers, kept[2:]...) {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.start(nil)
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: still there (%v)", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := h.d.Get(context.Background(), mi.Info.InfoHash); err != nil {
		t.Fatal(err)
	}
}
