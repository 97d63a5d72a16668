package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"node/cmd/node/api"
	"node/metadata"
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
