package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"node/cmd/node/api"
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
