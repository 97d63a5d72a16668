package metadata

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMetaInfoRoundTrip(t *testing.T) {
	for _, name := range []string{"single.torrent", "multi.torrent", "private.torrent"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseMetaInfo(b)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, b) {
				t.Fatalf("round trip not byte-identical:\n got %q\nwant %q", out, b)
			}
		})
	}
	t.Run("all fields", func(t *testing.T) {
		raw := enc(t, singleInfo("f", 16<<10, 5))
		info, err := ParseInfo(raw)
		if err != nil {
			t.Fatal(err)
		}
		m := &MetaInfo{
			Info:         info,
			Nodes:        []string{"127.0.0.1:6881", "[::1]:6882", "router.example.org:25401"},
			Announce:     "http://tracker.example/announce",
			AnnounceList: [][]string{{"http://a/announce", "udp://b:80"}, {"http://c/announce"}},
			Comment:      "a comment",
			CreatedBy:    "node test",
			CreationDate: 1700000000,
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseMetaInfo(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("got %+v\nwant %+v", m2, m)
		}
		b2, err := m2.Marshal()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("second Marshal differs (%v)", err)
		}
	})
}

func TestParseMetaInfoNodes(t *testing.T) {
	raw := enc(t, singleInfo("f", 16<<10, 5))
	torrent := enc(t, map[string]any{
		"info": rawValue(raw),
		"nodes": []any{
			[]any{"127.0.0.1", 6881},
			[]any{"::1", 6882},
			[]any{"bad host!", 1},       // skipped: not a host
			[]any{"10.0.0.1", 0},        // skipped: port 0
			[]any{"10.0.0.1", 70000},    // skipped: port too big
			[]any{"10.0.0.1"},           // skipped: no port
			[]any{6881, "10.0.0.1"},     // skipped: swapped
			"10.0.0.1:6881",             // skipped: not a list
			[]any{"fe80::1%eth0", 6881}, // skipped: zoned
			[]any{"dht.example.net", 25401},
		},
	})
	m, err := ParseMetaInfo(torrent)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:6881", "[::1]:6882", "dht.example.net:25401"}
	if !reflect.DeepEqual(m.Nodes, want) {
		t.Fatalf("nodes %q, want %q", m.Nodes, want)
	}

	// A "nodes" value of the wrong type costs only the nodes.
	m, err = ParseMetaInfo(enc(t, map[string]any{"info": rawValue(raw), "nodes": "nope", "comment": 5}))
	if err != nil || m.Nodes != nil || m.Comment != "" {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func TestParseMetaInfoErrors(t *testing.T) {
	info := enc(t, singleInfo("f", 16<<10, 5))
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"garbage", []byte("this is not a torrent")},
		{"list", []byte("l" + string(enc(t, map[string]any{"info": rawValue(info)})) + "e")},
		{"no info", enc(t, map[string]any{"announce": "x"})},
		{"info not a dict", enc(t, map[string]any{"info": "x"})},
		{"invalid info", enc(t, map[string]any{"info": singleInfo("..", 16<<10, 5)})},
		{"truncated", enc(t, map[string]any{"info": rawValue(info)})[:30]},
		{"trailing bytes", append(enc(t, map[string]any{"info": rawValue(info)}), 'x')},
		{"deep", []byte("d4:info" + strings.Repeat("l", 1<<20))},
		{"too large", append([]byte("d4:info"), make([]byte, maxMetaInfoSize)...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseMetaInfo(tt.b); err == nil {
				t.Fatal("no error")
			}
		})
	}
	_, err := ParseMetaInfo(enc(t, map[string]any{"info": singleInfo("..", 16<<10, 5)}))
	if !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("unsafe info: %v", err)
	}
}

// rawValue is already-bencoded bytes for enc.
type rawValue []byte

func (r rawValue) MarshalBencode() ([]byte, error) { return r, nil }

// writeTree creates files (path → content) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "content")
	for p, c := range files {
		fp := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// verifyPieces re-hashes the content of info from dir and compares.
func verifyPieces(t *testing.T, info *Info, dir string) {
	t.Helper()
	var readers []io.Reader
	for _, f := range info.Files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.Join(f.Path...)))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != f.Length {
			t.Fatalf("%v: %d bytes, torrent says %d", f.Path, len(b), f.Length)
		}
		readers = append(readers, bytes.NewReader(b))
	}
	all, _ := io.ReadAll(io.MultiReader(readers...))
	if int64(len(all)) != info.Length {
		t.Fatalf("content %d bytes, torrent says %d", len(all), info.Length)
	}
	for p := range info.NumPieces() {
		start := int64(p) * info.PieceLength
		if sha1.Sum(all[start:start+info.PieceSize(p)]) != info.Pieces[p] {
			t.Fatalf("piece %d does not verify", p)
		}
	}
}

func TestCreateDir(t *testing.T) {
	root := writeTree(t, map[string]string{
		"b/deep/x.txt": strings.Repeat("x", 70000),
		"a.txt":        "hello",
		"empty":        "",
		"b/y.bin":      strings.Repeat("\x01\x02\x03", 20000),
		"c":            strings.Repeat("z", 16<<10),
	})
	if err := os.Symlink(filepath.Join(root, "a.txt"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "emptydir", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	opts := CreateOptions{Nodes: []string{"127.0.0.1:6881"}, CreatedBy: "node/test"}
	m, err := Create(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info
	if info.Name != "content" || info.PieceLength != 16<<10 {
		t.Fatalf("name %q piece length %d", info.Name, info.PieceLength)
	}
	var paths []string
	for _, f := range info.Files {
		paths = append(paths, strings.Join(f.Path, "/"))
	}
	want := []string{"content/a.txt", "content/b/deep/x.txt", "content/b/y.bin", "content/c", "content/empty"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("files %q, want %q", paths, want)
	}
	reparsed, err := ParseInfo(info.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(reparsed, info) {
		t.Fatal("ParseInfo(Raw) differs from Create's Info")
	}
	verifyPieces(t, info, filepath.Dir(root))

	m2, err := Create(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	b1, err1 := m.Marshal()
	b2, err2 := m2.Marshal()
	if err1 != nil || err2 != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("two Creates differ (%v, %v)", err1, err2)
	}
	if bytes.Contains(b1, []byte("announce")) {
		t.Fatal("a trackerless torrent has an announce key")
	}
	back, err := ParseMetaInfo(b1)
	if err != nil || !reflect.DeepEqual(back.Nodes, opts.Nodes) || back.CreatedBy != "node/test" {
		t.Fatalf("reparsed %+v, %v", back, err)
	}
}

func TestCreateSingleFile(t *testing.T) {
	root := writeTree(t, map[string]string{"movie.mkv": strings.Repeat("m", 100000)})
	m, err := Create(filepath.Join(root, "movie.mkv"), CreateOptions{PieceLength: 32 << 10, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info
	if info.Name != "movie.mkv" || info.Length != 100000 || info.NumPieces() != 4 || !info.Private ||
		!reflect.DeepEqual(info.Files, []File{{Path: []string{"movie.mkv"}, Length: 100000}}) {
		t.Fatalf("got %+v", info)
	}
	verifyPieces(t, info, root)

	empty := writeTree(t, map[string]string{"zero": ""})
	m, err = Create(filepath.Join(empty, "zero"), CreateOptions{})
	if err != nil || m.Info.Length != 0 || m.Info.NumPieces() != 0 {
		t.Fatalf("0-byte file: %+v, %v", m, err)
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "hollow"), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := writeTree(t, map[string]string{"f": "x"})
	for _, tt := range []struct {
		name string
		path string
		opts CreateOptions
	}{
		{"missing", filepath.Join(dir, "nope"), CreateOptions{}},
		{"no files", filepath.Join(dir, "hollow"), CreateOptions{}},
		{"bad piece length", ok, CreateOptions{PieceLength: -1}},
		{"huge piece length", ok, CreateOptions{PieceLength: MaxPieceLength + 1}},
		{"bad node", ok, CreateOptions{Nodes: []string{"no-port"}}},
		{"root", "/", CreateOptions{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Create(tt.path, tt.opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
	// A name that is unsafe in a torrent is refused, not written.
	bad := writeTree(t, map[string]string{`back\slash`: "x"})
	if _, err := Create(bad, CreateOptions{}); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("backslash name: %v", err)
	}
}

func TestChoosePieceLength(t *testing.T) {
	for _, tt := range []struct{ total, want int64 }{
		{0, 16 << 10},
		{1500 * 16 << 10, 16 << 10},
		{1500*16<<10 + 1, 32 << 10},
		{4 << 30, 4 << 20},
		{1 << 50, 16 << 20},
	} {
		if got := choosePieceLength(tt.total); got != tt.want {
			t.Errorf("choosePieceLength(%d) = %d, want %d", tt.total, got, tt.want)
		}
	}
}

func TestMagnet(t *testing.T) {
	info, err := ParseInfo(enc(t, singleInfo("My File & more.iso", 16<<10, 5)))
	if err != nil {
		t.Fatal(err)
	}
	want := "magnet:?xt=urn:btih:" + info.InfoHash.String() + "&dn=My+File+%26+more.iso"
	if got := (&MetaInfo{Info: info}).Magnet(); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if len(info.InfoHash.String()) != 40 || strings.ToLower(info.InfoHash.String()) != info.InfoHash.String() {
		t.Fatal("info-hash not 40 lowercase hex digits")
	}
}

// Only maxTrackers announce URLs are kept: they are only counted.
func TestParseMetaInfoTrackerCap(t *testing.T) {
	tier := make([]string, maxTrackers/2+10)
	for i := range tier {
		tier[i] = fmt.Sprintf("http://t%d.example/announce", i)
	}
	b := enc(t, map[string]any{"announce-list": [][]string{tier, tier, tier}, "info": rawValue(enc(t, singleInfo("f", 16<<10, 5)))})
	m, err := ParseMetaInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, t := range m.AnnounceList {
		n += len(t)
	}
	if n != maxTrackers || len(m.AnnounceList) != 2 {
		t.Fatalf("kept %d URLs in %d tiers, want %d in 2", n, len(m.AnnounceList), maxTrackers)
	}
}
