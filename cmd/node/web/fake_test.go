package web_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"node/cmd/node/api"
	"node/magnet"
	"node/metadata"
)

// fakeDaemon is a Backend that behaves like a daemon to the page: a magnet
// added gets its metadata on the next poll, then more verified pieces on
// each poll until it completes and seeds. Names and paths it reports are
// hostile HTML, as a peer could make them.
type fakeDaemon struct {
	mu       sync.Mutex
	torrents map[string]*fakeTorrent
	adds     int
	paused   int
	resumed  int
	removed  map[string]bool // info-hash -> data deleted
	// manyFiles makes every torrent report this many files more.
	manyFiles int
	dht       api.DHTStatus
}

type fakeTorrent struct {
	t     api.Torrent
	have  []bool
	order []int // the pieces, in the order they verify
}

const (
	fakePieces   = 48
	fakePieceLen = 256 << 10
	fakePerPoll  = 7 // pieces verified per poll
	// fakeHostile is what the fake's files are called.
	fakeHostile = `<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>`
)

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{
		torrents: map[string]*fakeTorrent{},
		removed:  map[string]bool{},
		dht:      fakeDHT(),
	}
}

func (f *fakeDaemon) Add(ctx context.Context, req api.AddRequest) (api.Torrent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.Magnet == "" {
		return api.Torrent{}, api.BadRequest{Err: fmt.Errorf("the fake takes magnets only")}
	}
	l, err := magnet.Parse(req.Magnet)
	if err != nil {
		return api.Torrent{}, api.BadRequest{Err: err}
	}
	if !l.HasV1 {
		return api.Torrent{}, api.BadRequest{Err: fmt.Errorf("no v1 info-hash")}
	}
	ih := hex.EncodeToString(l.InfoHash[:])
	if _, ok := f.torrents[ih]; ok {
		return api.Torrent{}, api.ErrExists
	}
	f.adds++
	name := l.Name
	if name == "" {
		name = ih
	}
	dir := req.Dir
	if dir == "" {
		dir = "/srv/node"
	}
	ft := &fakeTorrent{t: api.Torrent{
		InfoHash: ih, Name: name, Dir: dir, State: api.StateMetadata, AddedAt: time.Now().UTC(),
	}}
	if req.Paused {
		ft.t.State = api.StatePaused
	}
	ft.order = rand.New(rand.NewPCG(1, 2)).Perm(fakePieces)
	f.torrents[ih] = ft
	return ft.t, nil
}

// advance is one poll's worth of progress.
func (ft *fakeTorrent) advance() {
	t := &ft.t
	switch t.State {
	case api.StateMetadata:
		t.State = api.StateDownloading
		t.Pieces = fakePieces
		t.Length = fakePieces*fakePieceLen - 1234
		ft.have = make([]bool, fakePieces)
	case api.StateDownloading:
		for range fakePerPoll {
			if t.Have == fakePieces {
				break
			}
			ft.have[ft.order[t.Have]] = true
			t.Have++
		}
		t.Done = min(t.Length, int64(t.Have)*fakePieceLen)
		t.Downloaded = t.Done
		t.DownRate = fakePerPoll * fakePieceLen
		t.UpRate = 12 << 10
		t.Uploaded += 12 << 10
		t.Peers, t.UTPPeers, t.Encrypted = 3, 1, 2
		if t.Have == fakePieces {
			t.Done = t.Length
			t.State = api.StateSeeding
			t.DownRate = 0
		}
	case api.StateSeeding:
		t.UpRate = 40 << 10
		t.Uploaded += 40 << 10
		t.Peers, t.UTPPeers, t.Encrypted = 2, 1, 1
	default:
		t.DownRate, t.UpRate, t.Peers, t.UTPPeers, t.Encrypted = 0, 0, 0, 0, 0
	}
}

func (f *fakeDaemon) List(ctx context.Context) ([]api.Torrent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Torrent
	for _, ft := range f.torrents {
		ft.advance()
		out = append(out, ft.t)
	}
	return out, nil
}

func (f *fakeDaemon) Get(ctx context.Context, ih metadata.InfoHash) (api.TorrentDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.torrents[hex.EncodeToString(ih[:])]
	if !ok {
		return api.TorrentDetail{}, api.ErrNotFound
	}
	ft.advance()
	d := api.TorrentDetail{Torrent: ft.t}
	if ft.have != nil {
		d.PieceBuckets = api.PieceBuckets(len(ft.have), func(i int) bool { return ft.have[i] })
		third := ft.t.Length / 3
		d.Files = []api.File{
			{Path: "docs/readme.txt", Length: third, Done: min(third, ft.t.Done)},
			{Path: fakeHostile + "/a.bin", Length: third, Done: max(0, min(third, ft.t.Done-third))},
			{Path: "data/b.bin", Length: ft.t.Length - 2*third, Done: max(0, ft.t.Done-2*third)},
		}
		for i := range f.manyFiles {
			d.Files = append(d.Files, api.File{Path: fmt.Sprintf("many/%04d", i)})
		}
	}
	if ft.t.Peers > 0 {
		d.PeerList = []api.Peer{
			{Addr: "127.0.0.2:6881", Outgoing: true, Transport: "tcp", Encryption: "rc4", Downloaded: ft.t.Downloaded / 2},
			{Addr: "127.0.0.3:6881", Transport: "utp", Encryption: "none", Downloaded: ft.t.Downloaded / 2, Uploaded: ft.t.Uploaded},
		}
	}
	return d, nil
}

func (f *fakeDaemon) Pause(ctx context.Context, ih metadata.InfoHash) (api.Torrent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.torrents[hex.EncodeToString(ih[:])]
	if !ok {
		return api.Torrent{}, api.ErrNotFound
	}
	f.paused++
	ft.t.State = api.StatePaused
	return ft.t, nil
}

func (f *fakeDaemon) Resume(ctx context.Context, ih metadata.InfoHash) (api.Torrent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.torrents[hex.EncodeToString(ih[:])]
	if !ok {
		return api.Torrent{}, api.ErrNotFound
	}
	f.resumed++
	switch {
	case ft.have == nil:
		ft.t.State = api.StateMetadata
	case ft.t.Have == fakePieces:
		ft.t.State = api.StateSeeding
	default:
		ft.t.State = api.StateDownloading
	}
	return ft.t, nil
}

func (f *fakeDaemon) Remove(ctx context.Context, ih metadata.InfoHash, deleteData bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := hex.EncodeToString(ih[:])
	if _, ok := f.torrents[k]; !ok {
		return api.ErrNotFound
	}
	delete(f.torrents, k)
	f.removed[k] = deleteData
	return nil
}

func (f *fakeDaemon) DHT(ctx context.Context) (api.DHTStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dht, nil
}

// fakeDHT is a routing table and two lookups shaped like a real node's:
// full far buckets, thinner near ones, and lookups that close in on
// their target wave by wave, with some queries that time out.
func fakeDHT() api.DHTStatus {
	r := rand.New(rand.NewPCG(3, 4))
	id := func() string {
		var b [20]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return hex.EncodeToString(b[:])
	}
	st := api.DHTStatus{
		ID: id(), Addr: "127.0.0.1:6881", Addr6: "[::1]:6881", External: "127.0.0.1",
		QueriesIn:       map[string]uint64{"ping": 120, "find_node": 340, "get_peers": 210, "announce_peer": 14},
		QueriesOut:      map[string]uint64{"ping": 90, "find_node": 400, "get_peers": 160},
		Responses:       610,
		Timeouts:        40,
		Drops:           map[string]uint64{"rate_limited": 7, "malformed": 2},
		StoreInfoHashes: 5, StorePeers: 17,
	}
	states := []string{"good", "good", "good", "good", "questionable", "bad"}
	for _, fam := range []struct {
		name   string
		depths int
		port   int
	}{{"ipv4", 14, 6881}, {"ipv6", 6, 6882}} {
		for d := range fam.depths {
			n := 8
			if d >= fam.depths-5 {
				n = max(1, 8-2*(d-(fam.depths-5)))
			}
			b := api.Bucket{Family: fam.name, Depth: d}
			for j := range n {
				addr := fmt.Sprintf("127.0.%d.%d:%d", d, j+1, fam.port)
				if fam.name == "ipv6" {
					addr = fmt.Sprintf("[::1]:%d", 10000+100*d+j)
				}
				b.Nodes = append(b.Nodes, api.BucketNode{
					ID: id(), Addr: addr, State: states[r.IntN(len(states))],
					Dist: float64(159-d) + math.Log2(1+r.Float64()),
				})
				st.Nodes++
				if b.Nodes[j].State == "good" {
					st.Good++
				}
			}
			st.Buckets = append(st.Buckets, b)
		}
	}
	for i, l := range []struct {
		method string
		waves  int
	}{{"get_peers", 8}, {"find_node", 5}} {
		lk := api.Lookup{Target: id(), Method: l.method, Start: time.Date(2026, 1, 2, 3, 4, 5+i, 0, time.UTC)}
		sent := 0.0
		for w := range l.waves {
			for k := range 3 {
				a := api.LookupAnswer{Addr: fmt.Sprintf("127.1.%d.%d:6881", w, k+1), SentMS: sent + float64(k)*2}
				dist := 158 - 18*float64(w) + 6*r.Float64()
				if w == 0 && k == 2 {
					a.Dist = nil // a bootstrap address whose ID we never learn
				} else {
					a.Dist = &dist
				}
				if r.IntN(5) == 0 || a.Dist == nil {
					a.DoneMS = a.SentMS + 500
				} else {
					a.OK = true
					a.DoneMS = a.SentMS + 15 + 80*r.Float64()
				}
				lk.Answers = append(lk.Answers, a)
				lk.DurationMS = max(lk.DurationMS, a.DoneMS)
			}
			sent += 60
		}
		if l.method == "get_peers" {
			lk.Peers = 9
		}
		st.Lookups = append(st.Lookups, lk)
	}
	return st
}
