package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"node/cmd/node/api"
	"node/metadata"
)

// hugeBackend answers Get with a torrent of many pieces and files,
// its piece map unreduced when raw is set (as a careless Backend might
// send it).
type hugeBackend struct {
	api.Backend
	pieces, files int
	raw           bool
}

func (b hugeBackend) Get(ctx context.Context, ih metadata.InfoHash) (api.TorrentDetail, error) {
	d := api.TorrentDetail{Torrent: api.Torrent{InfoHash: ih.String(), Pieces: b.pieces, Have: b.pieces / 2}}
	alternate := func(i int) bool { return i%2 == 0 }
	if b.raw {
		d.PieceBuckets = make([]float64, b.pieces)
		for i := range d.PieceBuckets {
			if alternate(i) {
				d.PieceBuckets[i] = 1
			}
		}
	} else {
		d.PieceBuckets = api.PieceBuckets(b.pieces, alternate)
	}
	for i := range b.files {
		d.Files = append(d.Files, api.File{Path: fmt.Sprintf("dir/%06d.bin", i), Length: 1 << 20})
	}
	return d, nil
}

// TestDetailBounded: a torrent of 838,860 pieces, alternately verified
// (the worst piece map for a page that draws runs), and 100,000 files
// is at most MaxPieceBuckets buckets and MaxDetailFiles files on the
// wire, with the count of all its files, whether or not the Backend
// reduced it.
func TestDetailBounded(t *testing.T) {
	const pieces, files = 838_860, 100_000
	for _, raw := range []bool{false, true} {
		s := start(t, hugeBackend{Backend: fakeWithOne(), pieces: pieces, files: files, raw: raw})
		a := send(t, s, request{method: "GET", path: "/api/v1/torrents/" + knownIH, token: testToken})
		if a.code != http.StatusOK {
			t.Fatalf("HTTP %d %s", a.code, a.body)
		}
		var d api.TorrentDetail
		if err := json.Unmarshal(a.body, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.PieceBuckets) != api.MaxPieceBuckets || len(d.Files) != api.MaxDetailFiles || d.FilesTotal != files {
			t.Fatalf("raw %v: %d buckets, %d files of %d: want MaxPieceBuckets %d, MaxDetailFiles %d, %d",
				raw, len(d.PieceBuckets), len(d.Files), d.FilesTotal, api.MaxPieceBuckets, api.MaxDetailFiles, files)
		}
		for i, v := range d.PieceBuckets {
			if math.Abs(v-0.5) > 0.01 {
				t.Fatalf("raw %v: bucket %d is %v, want about 0.5", raw, i, v)
			}
		}
		// A file row is about 60 bytes, a bucket 4: the whole is bounded
		// by the constants, not the torrent.
		if max := 100*api.MaxDetailFiles + 10*api.MaxPieceBuckets + 1<<10; len(a.body) > max {
			t.Fatalf("raw %v: a detail of %d bytes, over %d", raw, len(a.body), max)
		}
		t.Logf("raw %v: %d pieces and %d files: %d bytes", raw, pieces, files, len(a.body))
	}
}

func TestPieceBuckets(t *testing.T) {
	if b := api.PieceBuckets(0, nil); b == nil || len(b) != 0 {
		t.Errorf("no pieces: %v, want []", b)
	}
	// Up to MaxPieceBuckets pieces: one bucket each.
	b := api.PieceBuckets(5, func(i int) bool { return i != 3 })
	if fmt.Sprint(b) != "[1 1 1 0 1]" {
		t.Errorf("5 pieces: %v", b)
	}
	n := api.MaxPieceBuckets*3 + 7
	b = api.PieceBuckets(n, func(i int) bool { return i != 0 && i != n-1 })
	if len(b) != api.MaxPieceBuckets {
		t.Fatalf("%d pieces: %d buckets", n, len(b))
	}
	// One piece missing of a bucket is not complete, one verified of a
	// bucket is not empty, however the share rounds.
	big := 5000*api.MaxPieceBuckets + 1
	b = api.PieceBuckets(big, func(i int) bool { return i != 0 && i != big-2 })
	if b[0] == 1 || b[0] != 0.999 || b[len(b)-1] == 1 || b[1] != 1 {
		t.Errorf("a bucket with one piece missing: %v %v %v", b[0], b[1], b[len(b)-1])
	}
	b = api.PieceBuckets(big, func(i int) bool { return i == 0 })
	if b[0] != 0.001 || b[1] != 0 {
		t.Errorf("a bucket with one piece verified: %v, %v", b[0], b[1])
	}
	var sizes int
	for i := range api.MaxPieceBuckets {
		lo, hi := i*n/api.MaxPieceBuckets, (i+1)*n/api.MaxPieceBuckets
		sizes += hi - lo
	}
	if sizes != n {
		t.Errorf("the buckets cover %d pieces of %d", sizes, n)
	}
}

// TestBearerSchemeCase: the Authorization scheme is case-insensitive
// (RFC 7235); the token is not.
func TestBearerSchemeCase(t *testing.T) {
	s := start(t, fakeWithOne())
	for _, tc := range []struct {
		auth string
		code int
	}{
		{"Bearer " + testToken, 200},
		{"bearer " + testToken, 200},
		{"BEARER " + testToken, 200},
		{"bEaReR  " + testToken, 200},
		{"Bearer " + strings.ToUpper(testToken), 401},
		{"Bearer" + testToken, 401},
		{"Basic " + testToken, 401},
		{"Bearer ", 401},
		{testToken, 401},
	} {
		a := send(t, s, request{method: "GET", path: "/api/v1/torrents", header: map[string]string{"Authorization": tc.auth}})
		if a.code != tc.code {
			t.Errorf("Authorization %q: HTTP %d, want %d", tc.auth, a.code, tc.code)
		}
	}
}
