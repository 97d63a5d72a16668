package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// TorrentStates are the torrent state label's values: the api package's
// states (a closed set, so that no client can grow the series count).
var TorrentStates = [...]string{"metadata", "checking", "downloading", "seeding", "done", "queued", "paused", "error"}

// Transports are the transport label's values.
var Transports = [...]string{"tcp", "utp"}

// IncomingOutcomes are the outcome label's values: what became of a
// connection accepted on the daemon's peer port (see peer.MuxStats):
// handed to its torrent, closed because too many handshakes were in
// progress (over_budget), a handshake that failed or timed out, an
// info-hash no running torrent has, or the torrent's queue was full.
var IncomingOutcomes = [...]string{"routed", "over_budget", "handshake_failed", "unknown_torrent", "queue_full"}

// DaemonStats are node daemon's figures over all of its torrents since
// the process started (counters) or now (gauges).
type DaemonStats struct {
	// DownloadedBytes and UploadedBytes are piece payload received and
	// sent, wasted bytes included.
	DownloadedBytes, UploadedBytes uint64
	// PiecesVerified are pieces that passed their hash and were written;
	// PiecesFailed those that failed it.
	PiecesVerified, PiecesFailed uint64
	// Conns counts the connections that joined a torrent's peers, by
	// transport (Transports' order).
	Conns [len(Transports)]uint64
	// Peers are the connected peers now, by transport.
	Peers [len(Transports)]int
	// BannedPeers are the addresses banned now (a peer that sent data
	// failing its hash), over all torrents.
	BannedPeers int
	// Torrents counts the torrents by state (TorrentStates' names);
	// other names are ignored.
	Torrents map[string]int
	// Accepted counts the connections accepted on the peer port, and
	// Incoming what became of them, by outcome (IncomingOutcomes' order);
	// those still in their handshake are in neither.
	Accepted uint64
	Incoming [len(IncomingOutcomes)]uint64
}

// DaemonSource is what the daemon collector reads when scraped: cheap,
// from figures the daemon keeps anyway.
type DaemonSource interface {
	MetricsStats() DaemonStats
}

// Daemon is a prometheus.Collector of node daemon's torrents; register it
// beside a DHT collector watching the daemon's node.
type Daemon struct {
	src DaemonSource

	down, up, verified, failed, conns, peers, banned, torrents, accepted, incoming *prometheus.Desc
}

// NewDaemon returns a collector reading src at each scrape.
func NewDaemon(src DaemonSource) *Daemon {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("node_"+name, help, labels, nil)
	}
	return &Daemon{
		src:      src,
		down:     d("downloaded_bytes_total", "Piece payload received from peers, over all torrents, wasted bytes (duplicates, failed pieces) included."),
		up:       d("uploaded_bytes_total", "Piece payload sent to peers, over all torrents."),
		verified: d("pieces_verified_total", "Pieces that passed their SHA-1 check and were written."),
		failed:   d("pieces_hash_failed_total", "Pieces whose data failed its SHA-1 check."),
		conns:    d("peer_connections_total", "Peer connections that completed their handshake, by transport (tcp, utp).", "transport"),
		peers:    d("peers", "Peers connected now, by transport (tcp, utp).", "transport"),
		banned:   d("banned_peers", "Peer addresses banned now for sending data that failed its hash, over all torrents."),
		torrents: d("torrents", "Torrents by state (metadata, checking, downloading, seeding, done, queued, paused, error).", "state"),
		accepted: d("incoming_connections_accepted_total", "Connections accepted on the peer port (TCP and uTP), before their handshake."),
		incoming: d("incoming_connections_total", "Connections accepted on the peer port by what became of them: routed to their torrent, over_budget "+
			"(too many handshakes in progress), handshake_failed, unknown_torrent, queue_full.", "outcome"),
	}
}

// Describe implements prometheus.Collector.
func (d *Daemon) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.down, d.up, d.verified, d.failed, d.conns, d.peers, d.banned, d.torrents, d.accepted, d.incoming} {
		ch <- x
	}
}

// Collect implements prometheus.Collector.
func (d *Daemon) Collect(ch chan<- prometheus.Metric) {
	s := d.src.MetricsStats()
	counter := func(x *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(x, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(x *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(x, prometheus.GaugeValue, float64(v), labels...)
	}
	counter(d.down, s.DownloadedBytes)
	counter(d.up, s.UploadedBytes)
	counter(d.verified, s.PiecesVerified)
	counter(d.failed, s.PiecesFailed)
	for i, tr := range Transports {
		counter(d.conns, s.Conns[i], tr)
		gauge(d.peers, s.Peers[i], tr)
	}
	gauge(d.banned, s.BannedPeers)
	for _, st := range TorrentStates {
		gauge(d.torrents, s.Torrents[st], st)
	}
	counter(d.accepted, s.Accepted)
	for i, o := range IncomingOutcomes {
		counter(d.incoming, s.Incoming[i], o)
	}
}
