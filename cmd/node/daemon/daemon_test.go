package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"node/cmd/node/api"
	"node/cmd/node/metrics"
	tu "node/internal/testutil"
	"node/internal/testutil/promtest"
	"node/metadata"
	"node/peer"
	"node/storage"
)

// A magnet link added through the daemon completes from a seeder the DHT
// finds; the detail, the DHT status and the metrics show it.
func TestAddMagnetCompletes(t *testing.T) {
	h := newHarness(t, 171, harnessOpts{})
	src := t.TempDir()
	mi := content(t, src, "data", 1, map[string]int{"a.bin": 700 << 10, "sub/b.bin": 300<<10 + 17}, 64<<10)
	sa := seeder(t, 171, h.boot, mi, src)
	announced(t, h.node, mi.Info.InfoHash, sa)

	tor, err := h.d.Add(context.Background(), api.AddRequest{Magnet: mi.Info.Magnet()})
	if err != nil {
		t.Fatal(err)
	}
	if tor.InfoHash != hex.EncodeToString(mi.Info.InfoHash[:]) || tor.Dir != h.dir {
		t.Fatalf("added %+v", tor)
	}
	if tor.State != api.StateMetadata {
		t.Fatalf("state %q, want %q", tor.State, api.StateMetadata)
	}
	ih := mi.Info.InfoHash
	td := h.waitState(ih, 60*time.Second, api.StateSeeding)
	if td.Done != mi.Info.Length || td.Have != td.Pieces || td.Length != mi.Info.Length {
		t.Fatalf("seeding with %+v", td.Torrent)
	}
	for _, p := range []string{"a.bin", "sub/b.bin"} {
		want, _ := os.ReadFile(filepath.Join(src, "data", p))
		got, err := os.ReadFile(filepath.Join(h.dir, "data", p))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs: %v", p, err)
		}
	}
	if len(td.Files) != 2 || td.Files[0].Path != "data/a.bin" && td.Files[1].Path != "data/a.bin" {
		t.Fatalf("files %+v", td.Files)
	}
	tu.WaitFor(t, 10*time.Second, "the downloaded count", func() bool {
		return h.get(ih).Downloaded >= mi.Info.Length
	})
	if _, err := os.Stat(h.d.torrentPath(ih)); err != nil {
		t.Fatalf("the fetched metadata was not saved: %v", err)
	}
	ls, err := h.d.List(context.Background())
	if err != nil || len(ls) != 1 || ls[0].InfoHash != tor.InfoHash {
		t.Fatalf("list %+v, %v", ls, err)
	}

	st, err := h.d.DHT(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != h.node.ID().String() || st.Nodes == 0 || len(st.Buckets) == 0 || len(st.Lookups) == 0 {
		t.Fatalf("DHT status %+v", st)
	}
	if st.QueriesOut["get_peers"] == 0 || st.Lookups[0].Method != "get_peers" || len(st.Lookups[0].Answers) == 0 {
		t.Fatalf("DHT status queries %v, lookups %+v", st.QueriesOut, st.Lookups[0])
	}

	// Metrics, through the API server.
	dm := metrics.NewDHT()
	dm.Watch(h.node)
	srv, err := api.Listen("127.0.0.1:0", api.ServerConfig{
		Backend: h.d, Token: "tok",
		Metrics: metrics.Handler(metrics.NewRegistry(dm, metrics.NewDaemon(h.d)), nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fams := promtest.Scrape(t, "http://"+srv.Addr().String()+"/metrics", "tok")
	if v := fams.Value("node_downloaded_bytes_total"); v < float64(mi.Info.Length) {
		t.Fatalf("node_downloaded_bytes_total %v, want >= %d", v, mi.Info.Length)
	}
	// The first sample may come after some pieces: at most all of them.
	if v := fams.Value("node_pieces_verified_total"); v <= 0 || v > float64(mi.Info.NumPieces()) {
		t.Fatalf("node_pieces_verified_total %v of %d pieces", v, mi.Info.NumPieces())
	}
	if v := fams.Value("node_torrents", "state=seeding"); v != 1 {
		t.Fatalf("node_torrents{state=seeding} %v", v)
	}
	if v := fams.Value("node_peer_connections_total", "transport=tcp"); v < 1 {
		t.Fatalf("node_peer_connections_total{transport=tcp} %v", v)
	}
	if v := fams.Value("node_dht_routing_table_nodes", "family=ipv4"); v < 1 {
		t.Fatalf("node_dht_routing_table_nodes %v", v)
	}
	if n := len(fams["node_torrents"].GetMetric()); n != len(metrics.TorrentStates) {
		t.Fatalf("node_torrents has %d series, want %d", n, len(metrics.TorrentStates))
	}
}

// Pause stops a torrent and resume starts it again; both survive a
// restart of the daemon, as do the directory, the time added and the
// seed ratio; the saved .torrent spares a fetch of the metadata.
func TestPauseResumeAndRestart(t *testing.T) {
	h := newHarness(t, 172, harnessOpts{})
	src := t.TempDir()
	mi := content(t, src, "p", 2, map[string]int{"x.bin": 200 << 10}, 32<<10)
	ratio := 2.5
	dir := t.TempDir()
	tor, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi), Dir: dir + "/./", Paused: true, SeedRatio: &ratio})
	if err != nil {
		t.Fatal(err)
	}
	if tor.State != api.StatePaused || tor.Dir != dir || tor.SeedRatio != ratio || tor.Length != mi.Info.Length {
		t.Fatalf("added %+v", tor)
	}
	ih := mi.Info.InfoHash
	if _, err := h.d.Resume(context.Background(), ih); err != nil {
		t.Fatal(err)
	}
	h.waitState(ih, 20*time.Second, api.StateDownloading)
	p, err := h.d.Pause(context.Background(), ih)
	if err != nil || p.State != api.StatePaused {
		t.Fatalf("pause: %+v, %v", p, err)
	}
	h.d.mu.Lock()
	running := h.d.torrents[ih].run != nil
	h.d.mu.Unlock()
	if running {
		t.Fatal("paused, but its session runs")
	}

	h.stopDaemon()
	h.start(nil)
	got := h.get(ih)
	if got.State != api.StatePaused || got.Dir != dir || got.SeedRatio != ratio || !got.AddedAt.Equal(tor.AddedAt) || got.Length != mi.Info.Length {
		t.Fatalf("after a restart %+v, was %+v", got.Torrent, tor)
	}
	// The data appears, and a resumed torrent checks it: no peer needed,
	// since the .torrent was kept.
	if err := os.CopyFS(filepath.Join(dir, "p"), os.DirFS(filepath.Join(src, "p"))); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Resume(context.Background(), ih); err != nil {
		t.Fatal(err)
	}
	h.waitState(ih, 20*time.Second, api.StateSeeding)
}

// Remove without data keeps the files; with data it deletes the torrent's
// files and the directories they leave empty, and nothing else.
func TestRemove(t *testing.T) {
	h := newHarness(t, 173, harnessOpts{})
	mi := content(t, h.dir, "r", 3, map[string]int{"a.bin": 10 << 10, "d/b.bin": 5 << 10}, 16<<10)
	ih := mi.Info.InfoHash
	add := func() {
		t.Helper()
		if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi)}); err != nil {
			t.Fatal(err)
		}
		h.waitState(ih, 20*time.Second, api.StateSeeding)
	}
	add()
	if err := h.d.Remove(context.Background(), ih, false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Get(context.Background(), ih); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "r", "d", "b.bin")); err != nil {
		t.Fatalf("remove without data deleted a file: %v", err)
	}
	if _, err := os.Stat(h.d.torrentPath(ih)); !os.IsNotExist(err) {
		t.Fatalf("the saved .torrent stays: %v", err)
	}
	add()
	// Someone else's file beside the torrent's stays, and so does its
	// directory.
	other := filepath.Join(h.dir, "r", "notes.txt")
	if err := os.WriteFile(other, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Remove(context.Background(), ih, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"r/a.bin", "r/d/b.bin", "r/d"} {
		if _, err := os.Lstat(filepath.Join(h.dir, p)); !os.IsNotExist(err) {
			t.Fatalf("%s stays after remove with data: %v", p, err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("remove deleted a file not the torrent's: %v", err)
	}
	if err := h.d.Remove(context.Background(), ih, true); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("a second remove: %v", err)
	}
}

// A torrent whose directory was swapped for a symlink to elsewhere after
// it was added (or whose file is a symlink out) is removed with its data
// without deleting anything through the link.
func TestRemoveFollowsNoSymlink(t *testing.T) {
	h := newHarness(t, 174, harnessOpts{})
	dir := t.TempDir()
	mi := content(t, dir, "h", 4, map[string]int{"a.bin": 4 << 10, "d/b.bin": 4 << 10, "c.bin": 4 << 10}, 16<<10)
	ih := mi.Info.InfoHash
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi), Dir: dir}); err != nil {
		t.Fatal(err)
	}
	// Seeding: the files verified and are the torrent's (its resume
	// record says so); paused, so that nothing writes while they change.
	h.waitState(ih, 20*time.Second, api.StateSeeding)
	if _, err := h.d.Pause(context.Background(), ih); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	content(t, outside, "victim", 4, map[string]int{"b.bin": 4 << 10, "c.bin": 4 << 10}, 16<<10)
	// h/d -> outside/victim: h/d/b.bin would be outside/victim/b.bin.
	if err := os.RemoveAll(filepath.Join(dir, "h", "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dir, "h", "d")); err != nil {
		t.Fatal(err)
	}
	// h/c.bin -> outside/victim/c.bin.
	if err := os.Remove(filepath.Join(dir, "h", "c.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "victim", "c.bin"), filepath.Join(dir, "h", "c.bin")); err != nil {
		t.Fatal(err)
	}
	err := h.d.Remove(context.Background(), ih, true)
	if err == nil || !errors.Is(err, metadata.ErrUnsafePath) {
		t.Fatalf("remove through symlinks: %v, want the links named", err)
	}
	for _, p := range []string{"b.bin", "c.bin"} {
		if _, err := os.Stat(filepath.Join(outside, "victim", p)); err != nil {
			t.Fatalf("remove deleted %s through a symlink: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "h", "a.bin")); !os.IsNotExist(err) {
		t.Fatalf("the torrent's own file stays: %v", err)
	}
}

// The review's case, through the daemon: a torrent of precious.txt is
// added where the user's own precious.txt holds other data. Storage
// refuses the file (state error), and removing the torrent with its data
// removes the torrent but leaves the file, and says so.
func TestRemoveLeavesForeignFile(t *testing.T) {
	h := newHarness(t, 176, harnessOpts{})
	src, dl := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "precious.txt"), []byte("what the torrent says\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metadata.Create(filepath.Join(src, "precious.txt"), metadata.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ih := mi.Info.InfoHash
	precious := filepath.Join(dl, "precious.txt")
	thesis := []byte("the user's own thesis\n")
	if err := os.WriteFile(precious, thesis, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi), Dir: dl}); err != nil {
		t.Fatal(err)
	}
	td := h.waitState(ih, 20*time.Second, api.StateError)
	if !strings.Contains(td.Error, storage.ErrForeignData.Error()) {
		t.Fatalf("error %q, want the foreign data named", td.Error)
	}
	err = h.d.Remove(context.Background(), ih, true)
	if !errors.Is(err, storage.ErrNotClaimed) || !strings.Contains(err.Error(), precious) {
		t.Fatalf("Remove: %v, want %s named as left", err, precious)
	}
	if got, err := os.ReadFile(precious); err != nil || !bytes.Equal(got, thesis) {
		t.Fatalf("precious.txt: %q, %v", got, err)
	}
	if _, err := h.d.Get(context.Background(), ih); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("the torrent stays: %v", err)
	}
}

// With one download slot, three torrents run one at a time, first added
// first; a paused one gives its slot to the next, and a resumed one waits
// for a free slot, ahead of the later ones.
func TestQueue(t *testing.T) {
	h := newHarness(t, 175, harnessOpts{mod: func(c *Config) { c.MaxActiveDownloads = 1 }})
	var ihs []metadata.InfoHash
	for i := range 3 {
		var ih metadata.InfoHash
		ih[0], ih[19] = 0xd0, byte(i)
		ihs = append(ihs, ih)
		if _, err := h.d.Add(context.Background(), api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + hex.EncodeToString(ih[:])}); err != nil {
			t.Fatal(err)
		}
	}
	states := func() []string {
		var out []string
		for _, ih := range ihs {
			out = append(out, h.get(ih).State)
		}
		return out
	}
	want := func(w ...string) {
		t.Helper()
		if got := states(); strings.Join(got, ",") != strings.Join(w, ",") {
			t.Fatalf("states %v, want %v", got, w)
		}
	}
	want(api.StateMetadata, api.StateQueued, api.StateQueued)
	if _, err := h.d.Pause(context.Background(), ihs[0]); err != nil {
		t.Fatal(err)
	}
	want(api.StatePaused, api.StateMetadata, api.StateQueued)
	if _, err := h.d.Resume(context.Background(), ihs[0]); err != nil {
		t.Fatal(err)
	}
	want(api.StateQueued, api.StateMetadata, api.StateQueued)
	if err := h.d.Remove(context.Background(), ihs[1], false); err != nil {
		t.Fatal(err)
	}
	tu.WaitFor(t, 5*time.Second, "the first added to take the free slot", func() bool {
		return h.get(ihs[0]).State == api.StateMetadata
	})
	if s := h.get(ihs[2]).State; s != api.StateQueued {
		t.Fatalf("the last added is %s", s)
	}
}

// With one seed slot, of two complete torrents one seeds and the other,
// once its check finds it complete, waits queued.
func TestSeedQueue(t *testing.T) {
	h := newHarness(t, 176, harnessOpts{mod: func(c *Config) { c.MaxActiveSeeds = 1 }})
	a := content(t, h.dir, "a", 5, map[string]int{"f": 20 << 10}, 16<<10)
	b := content(t, h.dir, "b", 6, map[string]int{"f": 20 << 10}, 16<<10)
	for _, mi := range []*metadata.MetaInfo{a, b} {
		if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi)}); err != nil {
			t.Fatal(err)
		}
		// One at a time: the first found complete takes the slot.
		if mi == a {
			h.waitState(a.Info.InfoHash, 20*time.Second, api.StateSeeding)
		}
	}
	h.waitState(b.Info.InfoHash, 20*time.Second, api.StateQueued)
	tu.WaitFor(t, 10*time.Second, "the queued seed's session to end", func() bool {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		return h.d.torrents[b.Info.InfoHash].run == nil
	})
	if err := h.d.Remove(context.Background(), a.Info.InfoHash, false); err != nil {
		t.Fatal(err)
	}
	h.waitState(b.Info.InfoHash, 20*time.Second, api.StateSeeding)
}

// A torrent seeds until it has uploaded its seed ratio's worth, then
// stops in state done; resuming it seeds on, without a ratio.
func TestSeedRatioStops(t *testing.T) {
	h := newHarness(t, 177, harnessOpts{})
	mi := content(t, h.dir, "s", 7, map[string]int{"f": 256 << 10}, 32<<10)
	ih := mi.Info.InfoHash
	ratio := 0.5
	if _, err := h.d.Add(context.Background(), api.AddRequest{Torrent: torrentBytes(t, mi), SeedRatio: &ratio}); err != nil {
		t.Fatal(err)
	}
	h.waitState(ih, 20*time.Second, api.StateSeeding)
	addr := h.addr(ih)
	leech := runTorrent(t, peer.Config{InfoHash: ih, Dir: t.TempDir(), Peers: []netip.AddrPort{addr}, Encryption: peer.EncryptOff})
	select {
	case <-leech.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the leecher did not complete")
	}
	td := h.waitState(ih, 20*time.Second, api.StateDone)
	if float64(td.Uploaded) < ratio*float64(mi.Info.Length) {
		t.Fatalf("done after uploading %d of %d", td.Uploaded, mi.Info.Length)
	}
	r, err := h.d.Resume(context.Background(), ih)
	if err != nil || r.SeedRatio != 0 {
		t.Fatalf("resume: %+v, %v", r, err)
	}
	h.waitState(ih, 20*time.Second, api.StateSeeding)
}

// What a buggy or hostile API client sends gets the right error, and the
// number of torrents stays bounded.
func TestHostileAdd(t *testing.T) {
	h := newHarness(t, 178, harnessOpts{noState: true})
	srv, err := api.Listen("127.0.0.1:0", api.ServerConfig{Backend: h.d, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr().String() + "/api/v1/torrents"
	post := func(body string) int {
		req, _ := http.NewRequest("POST", base, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mag := "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20)
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"magnet":"` + mag + `","dir":"relative/dir"}`, http.StatusBadRequest},
		{`{"magnet":"` + mag + `","dir":"../up"}`, http.StatusBadRequest},
		{`{"torrent":"bm90IGEgdG9ycmVudA=="}`, http.StatusBadRequest},
		{`{"magnet":"magnet:?xt=urn:btih:zz"}`, http.StatusBadRequest},
		{`{"magnet":"` + mag + `","seed_ratio":-1}`, http.StatusBadRequest},
		{`{"magnet":"` + mag + `","paused":true}`, http.StatusCreated},
		{`{"magnet":"` + mag + `"}`, http.StatusConflict},
	} {
		if got := post(c.body); got != c.want {
			t.Fatalf("POST %s: %d, want %d", c.body, got, c.want)
		}
	}
	var ih metadata.InfoHash
	if _, err := h.d.Get(context.Background(), ih); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("Get of an unknown torrent: %v", err)
	}
	// Fill up to MaxTorrents (one is in already).
	for i := 1; i < MaxTorrents; i++ {
		ih[0], ih[1], ih[2] = 1, byte(i>>8), byte(i)
		if _, err := h.d.Add(context.Background(), api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + hex.EncodeToString(ih[:]), Paused: true}); err != nil {
			t.Fatalf("torrent %d: %v", i, err)
		}
	}
	if got := post(`{"magnet":"magnet:?xt=urn:btih:` + strings.Repeat("cd", 20) + `","paused":true}`); got != http.StatusBadRequest {
		t.Fatalf("torrent %d: %d, want 400", MaxTorrents+1, got)
	}
	ls, _ := h.d.List(context.Background())
	if len(ls) != MaxTorrents {
		t.Fatalf("%d torrents, want %d", len(ls), MaxTorrents)
	}
}

// A torrents file that no daemon wrote is refused with a clear error.
func TestLoadRefusesBadState(t *testing.T) {
	for name, body := range map[string]string{
		"not json":     "{",
		"version":      `{"version":9,"torrents":[]}`,
		"hash":         `{"version":1,"torrents":[{"info_hash":"xyz","dir":"/a"}]}`,
		"relative dir": `{"version":1,"torrents":[{"info_hash":"` + strings.Repeat("ab", 20) + `","dir":"a/b"}]}`,
		"twice": `{"version":1,"torrents":[{"info_hash":"` + strings.Repeat("ab", 20) + `","dir":"/a"},` +
			`{"info_hash":"` + strings.Repeat("ab", 20) + `","dir":"/a"}]}`,
		"ratio": `{"version":1,"torrents":[{"info_hash":"` + strings.Repeat("ab", 20) + `","dir":"/a","seed_ratio":-2}]}`,
	} {
		if _, err := decodeState([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"version":1,"torrents":[{"info_hash":"` + strings.Repeat("ab", 20) + `","magnet":"magnet:?xt=urn:btih:` + strings.Repeat("ab", 20) + `","dir":"/a","added_at":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decodeState(b)
		if err != nil {
			return
		}
		for _, r := range recs {
			if len(r.InfoHash) != 40 || !filepath.IsAbs(r.Dir) {
				t.Fatalf("accepted %+v", r)
			}
		}
	})
}

// List over the API with 100 torrents running: it reads the sampler's
// copies, not the torrents' loops.
func BenchmarkListAPI100(b *testing.B) {
	h := newHarness(b, 180, harnessOpts{noState: true, mod: func(c *Config) { c.MaxActiveDownloads = 100 }})
	for i := range 100 {
		var ih metadata.InfoHash
		ih[0], ih[1] = 0xbe, byte(i)
		if _, err := h.d.Add(context.Background(), api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + hex.EncodeToString(ih[:])}); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := api.Listen("127.0.0.1:0", api.ServerConfig{Backend: h.d, Token: "tok"})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	req, _ := http.NewRequest("GET", "http://"+srv.Addr().String()+"/api/v1/torrents", nil)
	req.Header.Set("Authorization", "Bearer tok")
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// The metrics' state label takes every state the API has.
func TestMetricsStatesAreAPIStates(t *testing.T) {
	api := []string{api.StateMetadata, api.StateChecking, api.StateDownloading, api.StateSeeding,
		api.StateDone, api.StateQueued, api.StatePaused, api.StateError}
	if strings.Join(api, ",") != strings.Join(metrics.TorrentStates[:], ",") {
		t.Fatalf("metrics.TorrentStates %v, API states %v", metrics.TorrentStates, api)
	}
}

// A torrent that cannot start (here: no listener) stops in state error
// and gives its slot to the next; resume tries again.
func TestErrorFreesSlot(t *testing.T) {
	var bad metadata.InfoHash
	bad[0] = 0xee
	fail := true
	var mu sync.Mutex
	h := newHarness(t, 181, harnessOpts{noState: true, mod: func(c *Config) {
		c.MaxActiveDownloads = 1
		listen := c.Listen
		c.Listen = func(ih metadata.InfoHash) (net.Listener, error) {
			mu.Lock()
			defer mu.Unlock()
			if ih == bad && fail {
				return nil, errors.New("no port for you")
			}
			return listen(ih)
		}
	}})
	good := bad
	good[0] = 0xef
	for _, ih := range []metadata.InfoHash{bad, good} {
		if _, err := h.d.Add(context.Background(), api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + hex.EncodeToString(ih[:])}); err != nil {
			t.Fatal(err)
		}
	}
	if td := h.get(bad); td.State != api.StateError || !strings.Contains(td.Error, "no port for you") {
		t.Fatalf("the failing torrent: %+v", td.Torrent)
	}
	if s := h.get(good).State; s != api.StateMetadata {
		t.Fatalf("the next torrent is %s", s)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := h.d.Remove(context.Background(), good, false); err != nil {
		t.Fatal(err)
	}
	if r, err := h.d.Resume(context.Background(), bad); err != nil || r.State != api.StateMetadata || r.Error != "" {
		t.Fatalf("resumed: %+v, %v", r, err)
	}
}

// A saved .torrent that was garbled is ignored on restart: the torrent
// stays, and fetches its metadata again from its magnet link.
func TestRestartWithGarbledTorrentFile(t *testing.T) {
	h := newHarness(t, 182, harnessOpts{})
	src := t.TempDir()
	mi := content(t, src, "g", 8, map[string]int{"f": 64 << 10}, 16<<10)
	ih := mi.Info.InfoHash
	sa := seeder(t, 182, h.boot, mi, src)
	if _, err := h.d.Add(context.Background(), api.AddRequest{Magnet: mi.Info.Magnet() + "&x.pe=" + sa.String()}); err != nil {
		t.Fatal(err)
	}
	h.waitState(ih, 30*time.Second, api.StateSeeding)
	tu.WaitFor(t, 10*time.Second, "the .torrent saved", func() bool {
		_, err := os.Stat(h.d.torrentPath(ih))
		return err == nil
	})
	h.stopDaemon()
	if err := os.WriteFile(h.d.torrentPath(ih), []byte("d4:info"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(h.dir, "g")); err != nil {
		t.Fatal(err)
	}
	h.start(nil)
	if td := h.get(ih); td.Length != 0 {
		t.Fatalf("the garbled .torrent was taken: %+v", td.Torrent)
	}
	h.waitState(ih, 30*time.Second, api.StateSeeding)
}
