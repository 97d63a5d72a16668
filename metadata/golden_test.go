package metadata

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.torrent from Create")

// goldenTorrents builds the torrents committed under testdata from fixed
// content, so that a change in Create's output shows up as a diff.
func goldenTorrents(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	add := func(name, path string, opts CreateOptions) {
		m, err := Create(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	single := writeTree(t, map[string]string{"hello.txt": "hello, trackerless world\n"})
	add("single.torrent", filepath.Join(single, "hello.txt"), CreateOptions{
		Nodes:     []string{"127.0.0.1:6881", "[::1]:6882"},
		CreatedBy: "node",
	})
	multi := writeTree(t, map[string]string{
		"docs/readme.md":   "# readme\n",
		"docs/empty":       "",
		"data/a/b/c.bin":   strings.Repeat("\x00\x01", 3000),
		"data/notes.txt":   "notes\n",
		"top-level.txt":    "top\n",
		"docs/zz/last.txt": "last\n",
	})
	add("multi.torrent", multi, CreateOptions{PieceLength: 1024, CreatedBy: "node"})
	priv := writeTree(t, map[string]string{"x": strings.Repeat("p", 40000), "y": "y"})
	add("private.torrent", priv, CreateOptions{PieceLength: 16 << 10, Private: true})
	return out
}

func TestGoldenTorrents(t *testing.T) {
	for name, b := range goldenTorrents(t) {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s: Create's output changed (rerun with -update if meant)", name)
		}
	}
}
