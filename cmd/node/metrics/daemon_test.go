package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"node/internal/testutil/promtest"
)

type fakeDaemon struct{ s DaemonStats }

func (f *fakeDaemon) MetricsStats() DaemonStats { return f.s }

// The daemon's series pass the linter, carry the figures given, and keep
// their label sets closed whatever state names the source reports.
func TestDaemonCollector(t *testing.T) {
	src := &fakeDaemon{s: DaemonStats{
		DownloadedBytes: 1000, UploadedBytes: 500, PiecesVerified: 7, PiecesFailed: 2,
		Conns: [2]uint64{3, 4}, Peers: [2]int{1, 2}, BannedPeers: 5,
		Torrents: map[string]int{"seeding": 2, "queued": 1, "made-up state": 9},
		Accepted: 11, Incoming: [5]uint64{6, 1, 2, 1, 0},
	}}
	d := NewDaemon(src)
	if problems, err := testutil.CollectAndLint(d); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	srv, err := Listen("127.0.0.1:0", NewRegistry(d), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := promtest.Scrape(t, "http://"+srv.Addr().String()+Path, "")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"node_downloaded_bytes_total", nil, 1000},
		{"node_uploaded_bytes_total", nil, 500},
		{"node_pieces_verified_total", nil, 7},
		{"node_pieces_hash_failed_total", nil, 2},
		{"node_peer_connections_total", []string{"transport=utp"}, 4},
		{"node_peers", []string{"transport=tcp"}, 1},
		{"node_banned_peers", nil, 5},
		{"node_torrents", []string{"state=seeding"}, 2},
		{"node_torrents", []string{"state=paused"}, 0},
		{"node_incoming_connections_accepted_total", nil, 11},
		{"node_incoming_connections_total", []string{"outcome=routed"}, 6},
		{"node_incoming_connections_total", []string{"outcome=unknown_torrent"}, 1},
		{"node_incoming_connections_total", []string{"outcome=queue_full"}, 0},
	} {
		if got := f.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := len(f["node_torrents"].GetMetric()); n != len(TorrentStates) {
		t.Fatalf("node_torrents has %d series, want %d", n, len(TorrentStates))
	}
	if n := len(f["node_incoming_connections_total"].GetMetric()); n != len(IncomingOutcomes) {
		t.Fatalf("node_incoming_connections_total has %d series, want %d", n, len(IncomingOutcomes))
	}
}
