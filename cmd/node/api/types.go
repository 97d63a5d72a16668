package api

import (
	"context"
	"errors"
	"math"
	"time"

	"node/metadata"
)

// Torrent states.
const (
	StateMetadata    = "metadata"    // fetching the info dictionary
	StateChecking    = "checking"    // verifying data already on disk
	StateDownloading = "downloading" // fetching pieces
	StateSeeding     = "seeding"     // complete, serving
	StateDone        = "done"        // complete, seed ratio reached: stopped
	StateQueued      = "queued"      // waiting for a free active slot
	StatePaused      = "paused"      // stopped by the user
	StateError       = "error"       // stopped by a failure (Error says which)
)

// Torrent is one torrent as the daemon lists it. Rates are bytes per
// second over the last few seconds; sizes are bytes.
type Torrent struct {
	InfoHash   string    `json:"info_hash"` // 40 lower-case hex digits
	Name       string    `json:"name"`      // the magnet's dn until the metadata is known
	Dir        string    `json:"dir"`
	State      string    `json:"state"`
	Error      string    `json:"error,omitempty"`
	AddedAt    time.Time `json:"added_at"`
	Length     int64     `json:"length"` // 0 until the metadata is known
	Done       int64     `json:"done"`   // verified on disk
	Pieces     int       `json:"pieces"`
	Have       int       `json:"have"`
	Downloaded int64     `json:"downloaded"` // piece payload, all sessions
	Uploaded   int64     `json:"uploaded"`
	DownRate   float64   `json:"down_rate"`
	UpRate     float64   `json:"up_rate"`
	Peers      int       `json:"peers"`
	UTPPeers   int       `json:"utp_peers"`
	Encrypted  int       `json:"encrypted_peers"`
	// SeedRatio is when seeding stops (uploaded/length); 0: never.
	SeedRatio float64 `json:"seed_ratio"`
}

// Bounds on a TorrentDetail, whatever the torrent: a page that polls it
// every second draws at most this much.
const (
	// MaxPieceBuckets bounds PieceBuckets.
	MaxPieceBuckets = 1024
	// MaxDetailFiles bounds Files.
	MaxDetailFiles = 1000
)

// TorrentDetail is one torrent with its files, peers and pieces.
type TorrentDetail struct {
	Torrent
	// Files are the torrent's first MaxDetailFiles files (padding files
	// left out); FilesTotal counts them all.
	Files      []File `json:"files"`
	FilesTotal int    `json:"files_total"`
	PeerList   []Peer `json:"peer_list"`
	// PieceBuckets is the piece map in at most MaxPieceBuckets buckets:
	// the Pieces pieces cut into len(PieceBuckets) runs as even as can be
	// (bucket i holds pieces i*Pieces/len to (i+1)*Pieces/len-1, integer
	// division), each the share of its pieces verified, 0 to 1, rounded
	// to 0.001 but never to 0 or 1 unless none or all are. A torrent of
	// at most MaxPieceBuckets pieces has a bucket per piece. Empty until
	// the metadata is known. PieceBuckets makes it.
	PieceBuckets []float64 `json:"piece_buckets"`
}

// PieceBuckets is TorrentDetail.PieceBuckets of n pieces, of which
// verified says which are.
func PieceBuckets(n int, verified func(i int) bool) []float64 {
	if n <= 0 {
		return []float64{}
	}
	nb := min(n, MaxPieceBuckets)
	out := make([]float64, nb)
	for b := range out {
		lo, hi := b*n/nb, (b+1)*n/nb
		have := 0
		for i := lo; i < hi; i++ {
			if verified(i) {
				have++
			}
		}
		out[b] = share(have, hi-lo)
	}
	return out
}

// share is have/size rounded to 0.001, kept off 0 and 1 unless it is
// exactly that: a bucket with one piece missing does not read complete.
func share(have, size int) float64 {
	switch {
	case have <= 0 || size <= 0:
		return 0
	case have >= size:
		return 1
	}
	v := math.Round(float64(have)/float64(size)*1000) / 1000
	return min(max(v, 0.001), 0.999)
}

// bound cuts d to the bounds above, whatever the Backend made of it.
func (d *TorrentDetail) bound() {
	d.FilesTotal = max(d.FilesTotal, len(d.Files))
	if len(d.Files) > MaxDetailFiles {
		d.Files = d.Files[:MaxDetailFiles:MaxDetailFiles]
	}
	if n := len(d.PieceBuckets); n > MaxPieceBuckets {
		in := d.PieceBuckets
		out := make([]float64, MaxPieceBuckets)
		for b := range out {
			lo, hi := b*n/MaxPieceBuckets, (b+1)*n/MaxPieceBuckets
			sum := 0.0
			for _, v := range in[lo:hi] {
				sum += min(max(v, 0), 1)
			}
			out[b] = sum / float64(hi-lo)
		}
		d.PieceBuckets = out
	}
}

// File is one file of a torrent; Path is relative to the torrent's Dir,
// slash-separated.
type File struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
	Done   int64  `json:"done"` // bytes in verified pieces
}

// Peer is one connected peer.
type Peer struct {
	Addr       string `json:"addr"`
	Outgoing   bool   `json:"outgoing"`
	Transport  string `json:"transport"`  // "tcp" or "utp"
	Encryption string `json:"encryption"` // "none", "header" or "rc4"
	Downloaded int64  `json:"downloaded"`
	Uploaded   int64  `json:"uploaded"`
}

// AddRequest adds a torrent: exactly one of Magnet and Torrent.
type AddRequest struct {
	Magnet string `json:"magnet,omitempty"`
	// Torrent is a .torrent file's bytes (base64 in JSON).
	Torrent []byte `json:"torrent,omitempty"`
	// Dir is the download directory; empty: the daemon's default.
	Dir string `json:"dir,omitempty"`
	// Paused adds it stopped.
	Paused bool `json:"paused,omitempty"`
	// SeedRatio, if set, replaces the daemon's default.
	SeedRatio *float64 `json:"seed_ratio,omitempty"`
}

// DHTStatus is the daemon's DHT node.
type DHTStatus struct {
	ID       string `json:"id"` // 40 hex digits
	Addr     string `json:"addr"`
	Addr6    string `json:"addr6,omitempty"`
	External string `json:"external,omitempty"` // as BEP 42 votes have it
	Nodes    int    `json:"nodes"`
	Good     int    `json:"good"`
	// Buckets is the routing table, one entry per bucket of each family.
	Buckets []Bucket `json:"buckets"`
	// QueriesIn and QueriesOut are by KRPC method; Drops by reason
	// (rate_limited, blocked, malformed, oversized, amplification,
	// send_dropped).
	QueriesIn  map[string]uint64 `json:"queries_in"`
	QueriesOut map[string]uint64 `json:"queries_out"`
	Responses  uint64            `json:"responses"`
	Timeouts   uint64            `json:"timeouts"`
	Drops      map[string]uint64 `json:"drops"`
	// StoreInfoHashes and StorePeers are the peer store's counts.
	StoreInfoHashes int `json:"store_info_hashes"`
	StorePeers      int `json:"store_peers"`
	// Lookups are the latest lookups, newest first (at most a few).
	Lookups []Lookup `json:"lookups"`
}

// Bucket is one k-bucket: the nodes whose IDs share Depth leading bits
// with ours (the last bucket of a family may hold deeper ones too).
type Bucket struct {
	Family string       `json:"family"` // "ipv4" or "ipv6"
	Depth  int          `json:"depth"`
	Nodes  []BucketNode `json:"nodes"`
}

// BucketNode is one routing table entry.
type BucketNode struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	State string `json:"state"` // "good", "questionable" or "bad"
	// Dist is log2 of the XOR distance from our ID (0 to 160; see
	// dht.TraceEvent.Dist).
	Dist float64 `json:"dist"`
}

// Lookup is one traced DHT lookup: every answer, as it came.
type Lookup struct {
	Target     string         `json:"target"`
	Method     string         `json:"method"` // find_node or get_peers
	Start      time.Time      `json:"start"`
	DurationMS float64        `json:"duration_ms"`
	Peers      int            `json:"peers"`
	Answers    []LookupAnswer `json:"answers"`
}

// LookupAnswer is one queried node: when it was asked and answered (ms
// since the lookup started) and its distance to the target (log2 of the
// XOR distance, as dht.TraceEvent.Dist; null when unknown).
type LookupAnswer struct {
	Addr   string   `json:"addr"`
	SentMS float64  `json:"sent_ms"`
	DoneMS float64  `json:"done_ms"`
	Dist   *float64 `json:"dist"`
	OK     bool     `json:"ok"` // answered (false: timed out or failed)
}

// Errors a Backend returns, which the server maps to status codes; any
// other error is a 500.
var (
	ErrNotFound = errors.New("no such torrent")       // 404
	ErrExists   = errors.New("torrent already added") // 409
)

// BadRequest is an error in what the client asked (a bad magnet link, a
// .torrent that does not parse, a directory that is not allowed): 400.
type BadRequest struct{ Err error }

func (e BadRequest) Error() string { return e.Err.Error() }
func (e BadRequest) Unwrap() error { return e.Err }

// Backend is what the server serves: node daemon implements it.
type Backend interface {
	Add(ctx context.Context, req AddRequest) (Torrent, error)
	List(ctx context.Context) ([]Torrent, error)
	Get(ctx context.Context, ih metadata.InfoHash) (TorrentDetail, error)
	Pause(ctx context.Context, ih metadata.InfoHash) (Torrent, error)
	Resume(ctx context.Context, ih metadata.InfoHash) (Torrent, error)
	Remove(ctx context.Context, ih metadata.InfoHash, deleteData bool) error
	DHT(ctx context.Context) (DHTStatus, error)
}
