package main

import (
	"bytes"
	"crypto/sha1"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"node/metadata"
)

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain name.txt", "plain name.txt"},
		{"héllo 日本語 🎵", "héllo 日本語 🎵"},
		{"clear\x1b[2Jscreen", `clear\x1b[2Jscreen`},
		{"over\rwrite\n", `over\rwrite\n`},
		{"tab\there", `tab\there`},
		{"\x1b]0;title\x07", `\x1b]0;title\a`},
		{"del\x7f", `del\x7f`},
		{"c1 csi \u009b2J", `c1 csi \u009b2J`},
		{"gpj.\u202eexe", `gpj.\u202eexe`},
		{"bad utf-8 \xff\xc3", `bad utf-8 \xff\xc3`},
		{`back\slash`, `back\slash`},
	} {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// evilTorrent writes a .torrent whose name and file names hold terminal
// escapes, and the content its seeder serves (under the names that reach
// the disk), and returns the .torrent's path.
func evilTorrent(t *testing.T, boot, seedDir string) (string, *metadata.MetaInfo) {
	t.Helper()
	content := bytes.Repeat([]byte("escape "), 5000)
	type file struct {
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	const pl = 16 << 10
	var pieces []byte
	for off := 0; off < len(content); off += pl {
		h := sha1.Sum(content[off:min(off+pl, len(content))])
		pieces = append(pieces, h[:]...)
	}
	raw, err := bencode.Marshal(struct {
		Files       []file `bencode:"files"`
		Name        string `bencode:"name"`
		PieceLength int64  `bencode:"piece length"`
		Pieces      []byte `bencode:"pieces"`
	}{[]file{{int64(len(content)), []string{"title\x1b]0;pwned\x07", "gpj.\u202eexe\u009b2J"}}},
		"evil\x1b[2J\rname", pl, pieces})
	if err != nil {
		t.Fatal(err)
	}
	info, err := metadata.ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	mi := &metadata.MetaInfo{Info: info, Nodes: []string{boot}}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tor := filepath.Join(t.TempDir(), "evil.torrent")
	if err := os.WriteFile(tor, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(seedDir, filepath.Join(info.Files[0].Path...))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return tor, mi
}

// rawControls finds what a terminal would act on in out: control
// characters other than newline, C1 controls and bidi overrides.
func rawControls(out string) []rune {
	var bad []rune
	for _, r := range out {
		if r != '\n' && unsafeRune(r) {
			bad = append(bad, r)
		}
	}
	return bad
}

// node info and node fetch print a hostile torrent's names escaped, and
// the files land on disk under names with '_' for control characters.
func TestEvilNamesEscaped(t *testing.T) {
	boot := startNetwork(t, 77, 4)
	seedDir := t.TempDir()
	tor, mi := evilTorrent(t, boot, seedDir)

	code, out, errOut := runCmd("info", tor)
	if code != exitOK {
		t.Fatalf("info: exit %d: %s", code, errOut)
	}
	if bad := rawControls(out + errOut); len(bad) > 0 {
		t.Errorf("node info printed raw %q:\n%s", bad, out)
	}
	for _, want := range []string{"name:       evil_[2J_name", `title_]0;pwned_/gpj.\u202eexe\u009b2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("node info output lacks %q:\n%s", want, out)
		}
	}

	seedInProcess(t, "127.0.77.50", boot, mi, seedDir, 0)
	dst := t.TempDir()
	code, out, errOut = runCmd("fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--listen", "127.0.77.100:0", "--dir", dst, "--timeout", "30s", tor)
	if code != exitOK {
		t.Fatalf("fetch: exit %d\n%s", code, errOut)
	}
	if bad := rawControls(out + errOut); len(bad) > 0 {
		t.Errorf("node fetch printed raw %q:\n%s", bad, errOut)
	}
	if !strings.Contains(errOut, `complete: "evil_[2J_name"`) {
		t.Errorf("no completion line with the escaped name:\n%s", errOut)
	}
	onDisk := filepath.Join(dst, "evil_[2J_name", "title_]0;pwned_", "gpj.\u202eexe\u009b2J")
	if _, err := os.Stat(onDisk); err != nil {
		t.Errorf("the file is not where '_' replaces control characters: %v", err)
	}
}
