package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"node/cmd/node/api"
	"node/cmd/node/metrics"
	"node/internal/browsertest"
	tu "node/internal/testutil"
	"node/internal/testutil/promtest"
	"node/metadata"
)

// The web page in headless chromium against node daemon run as a program,
// on a loopback swarm: a seeder of generated content and a DHT, both in
// this process. The page logs in with the daemon's token, adds the
// swarm's magnet link through its form, watches it complete, opens it,
// draws the daemon's routing table and lookups as its API has them, and
// pauses, resumes and removes it with its data. Screenshots go to
// $NODE_SCREENSHOTS if set, else t.ArtifactDir().
func TestDaemonPageInBrowser(t *testing.T) {
	browsertest.SkipWithoutChromium(t)
	bin := nodeBinary(t)
	boot := startNetwork(t, 221, 6)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "page"), map[string]int{"a.bin": 3 << 20, "docs/b.txt": 12_345, "docs/empty": 0})
	mi, err := metadata.Create(filepath.Join(src, "page"), metadata.CreateOptions{PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	seedInProcess(t, "127.0.221.50", boot, mi, src, 0)
	state, dst := t.TempDir(), t.TempDir()
	p := startDaemonProc(t, bin, state, "--listen", "127.0.221.100:0", "--bootstrap", boot, "--dir", dst)
	requirePage(t, p)
	// The DHT view is checked against at least one routing table node
	// (from the bootstrap) and one lookup (the torrent's, checked for in
	// OnDetail, before the view is opened).
	tu.WaitFor(t, 20*time.Second, "a node in the daemon's routing table", func() bool {
		var st api.DHTStatus
		return p.call("GET", "/api/v1/dht", nil, &st) == http.StatusOK && st.Nodes > 0
	})

	// Run ends the test at its first failure: say then what the daemon
	// had, before startDaemonProc's cleanup kills it (and logs its stderr).
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		var l struct{ Torrents []api.Torrent }
		p.call("GET", "/api/v1/torrents", nil, &l)
		for _, tr := range l.Torrents {
			td := p.torrent(mi.Info.InfoHash)
			t.Logf("the daemon has %s: state %s, %d of %d bytes, %d of %d pieces, piece_buckets %v, %d files",
				tr.InfoHash, tr.State, tr.Done, tr.Length, td.Have, td.Pieces, td.PieceBuckets, len(td.Files))
		}
	})
	browsertest.Run(t, browsertest.Config{
		URL: p.url, Token: p.token, Magnet: mi.Info.Magnet(),
		OnDetail: func(t *testing.T, _ context.Context) {
			sameFiles(t, filepath.Join(src, "page"), filepath.Join(dst, "page"))
			tu.WaitFor(t, 20*time.Second, "a lookup in the daemon's DHT status", func() bool {
				var st api.DHTStatus
				return p.call("GET", "/api/v1/dht", nil, &st) == http.StatusOK && len(st.Lookups) > 0
			})
		},
	})
	var l struct{ Torrents []api.Torrent }
	if code := p.call("GET", "/api/v1/torrents", nil, &l); code != http.StatusOK || len(l.Torrents) != 0 {
		t.Errorf("after the page removed it: %d %+v", code, l.Torrents)
	}
	if _, err := os.Stat(filepath.Join(dst, "page")); !os.IsNotExist(err) {
		t.Errorf("removed with its data, yet %s: %v", filepath.Join(dst, "page"), err)
	}
	p.stop()
}

// requirePage fails the test, saying why, when the daemon serves no page.
func requirePage(t *testing.T, p *daemonProc) {
	t.Helper()
	resp, err := http.Get(p.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET / from node daemon: %s, %s: the daemon serves no web page (api.ServerConfig.Page unset?)", resp.Status, ct)
	}
}

// node daemon's /metrics, scraped over HTTP with its token while a
// download runs and after it, parsed with the Prometheus text parser:
// every metric the DHT and daemon collectors describe is there each time,
// and the download's counters moved by what it fetched.
func TestDaemonMetricsScrape(t *testing.T) {
	bin := nodeBinary(t)
	boot := startNetwork(t, 222, 6)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "m"), map[string]int{"a.bin": 3 << 20, "b.bin": 54_321})
	mi, err := metadata.Create(filepath.Join(src, "m"), metadata.CreateOptions{PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// Slow enough that the download is seen under way.
	seedInProcess(t, "127.0.222.50", boot, mi, src, 1<<20)
	state, dst := t.TempDir(), t.TempDir()
	p := startDaemonProc(t, bin, state, "--listen", "127.0.222.100:0", "--bootstrap", boot, "--dir", dst)
	url := p.url + "/metrics"
	want := describedMetrics(t)

	// Guarded as the API is.
	for _, c := range []struct {
		name, token, host string
		code              int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"wrong token", strings.Repeat("0", 64), "", http.StatusUnauthorized},
		{"rebinding host", p.token, "attacker.example:80", http.StatusForbidden},
	} {
		if code, _ := get(t, url, c.token, c.host); code != c.code {
			t.Errorf("/metrics with %s: %d, want %d", c.name, code, c.code)
		}
	}

	tu.WaitFor(t, 20*time.Second, "a node in the daemon's routing table", func() bool {
		return promtest.Scrape(t, url, p.token).Value("node_dht_routing_table_nodes", "family=ipv4") > 0
	})
	before := promtest.Scrape(t, url, p.token)
	hasAll(t, "before the download", before, want)

	c := api.NewClient(strings.TrimPrefix(p.url, "http://"), p.token)
	defer c.Close()
	if _, err := c.Add(context.Background(), api.AddRequest{Magnet: mi.Info.Magnet()}); err != nil {
		t.Fatalf("add: %v", err)
	}
	var during promtest.Families
	tu.WaitFor(t, 30*time.Second, "a scrape half-way through the download", func() bool {
		td := p.torrent(mi.Info.InfoHash)
		if td.Done == 0 || td.Done == mi.Info.Length {
			if td.Done == mi.Info.Length {
				t.Fatalf("complete before a scrape saw it under way: slow the seeder")
			}
			return false
		}
		during = promtest.Scrape(t, url, p.token)
		return during.Value("node_torrents", "state=downloading") == 1
	})
	hasAll(t, "during the download", during, want)
	if v := during.Value("node_downloaded_bytes_total"); v <= 0 || v >= float64(mi.Info.Length) {
		t.Errorf("half-way node_downloaded_bytes_total = %v, want in (0, %d)", v, mi.Info.Length)
	}
	if v := during.Sum("node_peers"); v < 1 {
		t.Errorf("half-way node_peers sums to %v, want the seeder", v)
	}

	tu.WaitFor(t, 60*time.Second, "the download to complete", func() bool {
		return p.torrent(mi.Info.InfoHash).State == api.StateSeeding
	})
	sameFiles(t, filepath.Join(src, "m"), filepath.Join(dst, "m"))
	after := promtest.Scrape(t, url, p.token)
	hasAll(t, "after the download", after, want)
	pieces := float64(mi.Info.NumPieces())
	for _, c := range []struct {
		what          string
		before, after float64
		min           float64 // the least it must have moved by
	}{
		{"node_downloaded_bytes_total", before.Value("node_downloaded_bytes_total"), after.Value("node_downloaded_bytes_total"), float64(mi.Info.Length)},
		{"node_pieces_verified_total", before.Value("node_pieces_verified_total"), after.Value("node_pieces_verified_total"), pieces},
		{"node_peer_connections_total", before.Sum("node_peer_connections_total"), after.Sum("node_peer_connections_total"), 1},
		{"node_torrents{state=seeding}", before.Value("node_torrents", "state=seeding"), after.Value("node_torrents", "state=seeding"), 1},
		{"node_dht_queries_sent_total{method=get_peers}", before.Sum("node_dht_queries_sent_total", "method=get_peers"), after.Sum("node_dht_queries_sent_total", "method=get_peers"), 1},
		{"node_dht_lookups_total{method=get_peers,result=ok}", before.Sum("node_dht_lookups_total", "method=get_peers", "result=ok"), after.Sum("node_dht_lookups_total", "method=get_peers", "result=ok"), 1},
		{"node_dht_responses_received_total", before.Sum("node_dht_responses_received_total"), after.Sum("node_dht_responses_received_total"), 1},
	} {
		if c.after-c.before < c.min {
			t.Errorf("%s went from %v to %v, want a rise of at least %v", c.what, c.before, c.after, c.min)
		}
	}
	if v := after.Value("node_pieces_hash_failed_total"); v != 0 {
		t.Errorf("node_pieces_hash_failed_total = %v from an honest seeder", v)
	}
	t.Logf("scraped: %d bytes downloaded, %v pieces verified, %v peer connections",
		int64(after.Value("node_downloaded_bytes_total")), after.Value("node_pieces_verified_total"), after.Sum("node_peer_connections_total"))
	p.stop()
}

// describedMetrics are the names the DHT and daemon collectors describe:
// what node daemon registers beside the Go runtime's.
func describedMetrics(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		metrics.NewDHT().Describe(ch)
		metrics.NewDaemon(nil).Describe(ch)
		close(ch)
	}()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names = append(names, m[1])
	}
	slices.Sort(names)
	names = slices.Compact(names)
	for _, must := range []string{"node_dht_lookups_total", "node_dht_routing_table_nodes", "node_downloaded_bytes_total",
		"node_pieces_verified_total", "node_peer_connections_total", "node_torrents"} {
		if !slices.Contains(names, must) {
			t.Fatalf("the collectors describe %q, without %s", names, must)
		}
	}
	return names
}

func hasAll(t *testing.T, when string, fams map[string]*dto.MetricFamily, names []string) {
	t.Helper()
	for _, n := range names {
		if f := fams[n]; f == nil || len(f.GetMetric()) == 0 {
			t.Errorf("%s: %s missing from /metrics", when, n)
		}
	}
}

// get fetches url with token (none if empty) and a Host header of host
// (the URL's if empty).
func get(t *testing.T, url, token, host string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
