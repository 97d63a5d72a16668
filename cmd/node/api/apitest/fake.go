// Package apitest is a Backend for tests of the API's server, client and
// commands: torrents in memory, no swarm. Never linked into the binary.
package apitest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"node/cmd/node/api"
	"node/magnet"
	"node/metadata"
)

// Backend keeps torrents in a map. Its zero value is ready to use.
type Backend struct {
	mu       sync.Mutex
	torrents map[metadata.InfoHash]*api.Torrent
	// Removed records each Remove's deleteData, by info-hash.
	Removed map[metadata.InfoHash]bool
	// Adds records every AddRequest that reached the Backend.
	Adds []api.AddRequest
	// Block, if set, is waited for by List: a Backend that hangs.
	Block chan struct{}
}

// Put adds t as it is (its InfoHash must be 40 hex digits).
func (b *Backend) Put(t api.Torrent) {
	ih, err := magnet.ParseInfoHash(t.InfoHash)
	if err != nil {
		panic(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.torrents == nil {
		b.torrents = make(map[metadata.InfoHash]*api.Torrent)
	}
	b.torrents[metadata.InfoHash(ih)] = &t
}

// Torrent is the torrent of ih, if there is one.
func (b *Backend) Torrent(ih metadata.InfoHash) (api.Torrent, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.torrents[ih]
	if !ok {
		return api.Torrent{}, false
	}
	return *t, true
}

func (b *Backend) Add(ctx context.Context, req api.AddRequest) (api.Torrent, error) {
	b.mu.Lock()
	b.Adds = append(b.Adds, req)
	b.mu.Unlock()
	t := api.Torrent{Dir: req.Dir, State: api.StateMetadata, AddedAt: time.Now().UTC()}
	switch {
	case req.Magnet != "":
		l, err := magnet.Parse(req.Magnet)
		if err != nil {
			return t, api.BadRequest{Err: err}
		}
		t.InfoHash, t.Name = metadata.InfoHash(l.InfoHash).String(), l.Name
	default:
		mi, err := metadata.ParseMetaInfo(req.Torrent)
		if err != nil {
			return t, api.BadRequest{Err: err}
		}
		t.InfoHash, t.Name = mi.Info.InfoHash.String(), mi.Info.Name
		t.Length, t.Pieces, t.State = mi.Info.Length, mi.Info.NumPieces(), api.StateDownloading
	}
	if req.Paused {
		t.State = api.StatePaused
	}
	if req.SeedRatio != nil {
		t.SeedRatio = *req.SeedRatio
	}
	ih, _ := magnet.ParseInfoHash(t.InfoHash)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.torrents[ih]; ok {
		return api.Torrent{}, fmt.Errorf("%s: %w", t.InfoHash, api.ErrExists)
	}
	if b.torrents == nil {
		b.torrents = make(map[metadata.InfoHash]*api.Torrent)
	}
	b.torrents[ih] = &t
	return t, nil
}

func (b *Backend) List(ctx context.Context) ([]api.Torrent, error) {
	if b.Block != nil {
		<-b.Block
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ts := make([]api.Torrent, 0, len(b.torrents))
	for _, t := range b.torrents {
		ts = append(ts, *t)
	}
	slices.SortFunc(ts, func(a, b api.Torrent) int { return strings.Compare(a.InfoHash, b.InfoHash) })
	return ts, nil
}

func (b *Backend) Get(ctx context.Context, ih metadata.InfoHash) (api.TorrentDetail, error) {
	t, ok := b.Torrent(ih)
	if !ok {
		return api.TorrentDetail{}, fmt.Errorf("%s: %w", ih, api.ErrNotFound)
	}
	return api.TorrentDetail{
		Torrent:      t,
		Files:        []api.File{{Path: t.Name, Length: t.Length, Done: t.Done}},
		PeerList:     []api.Peer{},
		PieceBuckets: api.PieceBuckets(t.Pieces, func(int) bool { return false }),
	}, nil
}

func (b *Backend) setState(ih metadata.InfoHash, state string) (api.Torrent, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.torrents[ih]
	if !ok {
		return api.Torrent{}, fmt.Errorf("%s: %w", ih, api.ErrNotFound)
	}
	t.State = state
	return *t, nil
}

func (b *Backend) Pause(ctx context.Context, ih metadata.InfoHash) (api.Torrent, error) {
	return b.setState(ih, api.StatePaused)
}

func (b *Backend) Resume(ctx context.Context, ih metadata.InfoHash) (api.Torrent, error) {
	return b.setState(ih, api.StateDownloading)
}

func (b *Backend) Remove(ctx context.Context, ih metadata.InfoHash, deleteData bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.torrents[ih]; !ok {
		return fmt.Errorf("%s: %w", ih, api.ErrNotFound)
	}
	delete(b.torrents, ih)
	if b.Removed == nil {
		b.Removed = make(map[metadata.InfoHash]bool)
	}
	b.Removed[ih] = deleteData
	return nil
}

func (b *Backend) DHT(ctx context.Context) (api.DHTStatus, error) {
	d := 3.5
	return api.DHTStatus{
		ID:    strings.Repeat("ab", 20),
		Addr:  "127.0.0.1:6881",
		Nodes: 1,
		Good:  1,
		Buckets: []api.Bucket{{Family: "ipv4", Depth: 0, Nodes: []api.BucketNode{
			{ID: strings.Repeat("cd", 20), Addr: "127.0.0.2:6881", State: "good", Dist: 159},
		}}},
		QueriesIn:  map[string]uint64{"ping": 1},
		QueriesOut: map[string]uint64{"find_node": 2},
		Drops:      map[string]uint64{"rate_limited": 3},
		Lookups: []api.Lookup{{Target: strings.Repeat("ef", 20), Method: "get_peers",
			Answers: []api.LookupAnswer{{Addr: "127.0.0.2:6881", Dist: &d, OK: true}}}},
	}, nil
}

// Torrents makes n torrents with distinct info-hashes, as a busy daemon
// lists them.
func Torrents(n int) []api.Torrent {
	ts := make([]api.Torrent, n)
	for i := range ts {
		var ih metadata.InfoHash
		ih[0], ih[1], ih[19] = byte(i>>8), byte(i), 0x5a
		ts[i] = api.Torrent{
			InfoHash: ih.String(), Name: fmt.Sprintf("torrent %d with a name of ordinary length.iso", i),
			Dir: "/srv/torrents", State: api.StateSeeding, AddedAt: time.Unix(1_700_000_000+int64(i), 0).UTC(),
			Length: 4 << 30, Done: 4 << 30, Pieces: 16384, Have: 16384,
			Downloaded: 4 << 30, Uploaded: int64(i) << 28, UpRate: 123456.5, Peers: i % 50, UTPPeers: i % 7,
			SeedRatio: 2,
		}
	}
	return ts
}
