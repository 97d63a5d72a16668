package metadata

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseInfoValid(t *testing.T) {
	type want struct {
		name    string
		length  int64
		pieces  int
		lastLen int64
		files   []File
		private bool
	}
	tests := []struct {
		name string
		info map[string]any
		want want
	}{
		{
			name: "single file",
			info: singleInfo("a.iso", 16<<10, 40000),
			want: want{
				name: "a.iso", length: 40000, pieces: 3, lastLen: 40000 - 2*16<<10,
				files: []File{{Path: []string{"a.iso"}, Length: 40000}},
			},
		},
		{
			name: "single file, exact pieces, private",
			info: func() map[string]any {
				m := singleInfo("x", 1024, 4096)
				m["private"] = int64(1)
				return m
			}(),
			want: want{
				name: "x", length: 4096, pieces: 4, lastLen: 1024, private: true,
				files: []File{{Path: []string{"x"}, Length: 4096}},
			},
		},
		{
			name: "multi file, nested, empty file, uneven sizes",
			info: multiInfo("dir", 1000,
				file(1500, "a", "b", "c.txt"),
				file(0, "empty"),
				file(2501, "a", "d.bin"),
				file(7, "z"),
			),
			want: want{
				name: "dir", length: 4008, pieces: 5, lastLen: 8,
				files: []File{
					{Path: []string{"dir", "a", "b", "c.txt"}, Length: 1500, Offset: 0},
					{Path: []string{"dir", "empty"}, Length: 0, Offset: 1500},
					{Path: []string{"dir", "a", "d.bin"}, Length: 2501, Offset: 1500},
					{Path: []string{"dir", "z"}, Length: 7, Offset: 4001},
				},
			},
		},
		{
			// A BEP 52 hybrid lays out v1 with BEP 47 padding files so that
			// every file starts on a piece boundary.
			name: "hybrid with padding files",
			info: func() map[string]any {
				m := multiInfo("h", 16<<10,
					map[string]any{"length": int64(100), "path": []string{"one"}},
					map[string]any{"length": int64(16<<10 - 100), "path": []string{".pad", "16284"}, "attr": "p"},
					map[string]any{"length": int64(20000), "path": []string{"two"}, "attr": "x"},
					map[string]any{"length": int64(2*16<<10 - 20000), "path": []string{".pad", "12768"}, "attr": "p"},
					map[string]any{"length": int64(5), "path": []string{"three"}},
				)
				m["meta version"] = int64(2)
				m["file tree"] = map[string]any{
					"one":   map[string]any{"": map[string]any{"length": int64(100), "pieces root": strings.Repeat("r", 32)}},
					"two":   map[string]any{"": map[string]any{"length": int64(20000), "pieces root": strings.Repeat("r", 32)}},
					"three": map[string]any{"": map[string]any{"length": int64(5)}},
				}
				return m
			}(),
			want: want{
				name: "h", length: 3*16<<10 + 5, pieces: 4, lastLen: 5,
				files: []File{
					{Path: []string{"h", "one"}, Length: 100, Offset: 0},
					{Path: []string{"h", ".pad", "16284"}, Length: 16<<10 - 100, Offset: 100, Padding: true, Attr: "p"},
					{Path: []string{"h", "two"}, Length: 20000, Offset: 16 << 10, Attr: "x"},
					{Path: []string{"h", ".pad", "12768"}, Length: 2*16<<10 - 20000, Offset: 16<<10 + 20000, Padding: true, Attr: "p"},
					{Path: []string{"h", "three"}, Length: 5, Offset: 3 * 16 << 10},
				},
			},
		},
		{
			name: "padding files may repeat",
			info: multiInfo("p", 4,
				file(1, "a"),
				map[string]any{"length": int64(3), "path": []string{".pad", "3"}, "attr": "p"},
				file(1, "b"),
				map[string]any{"length": int64(3), "path": []string{".pad", "3"}, "attr": "p"},
				file(1, "c"),
			),
			want: want{
				name: "p", length: 9, pieces: 3, lastLen: 1,
				files: []File{
					{Path: []string{"p", "a"}, Length: 1},
					{Path: []string{"p", ".pad", "3"}, Length: 3, Offset: 1, Padding: true, Attr: "p"},
					{Path: []string{"p", "b"}, Length: 1, Offset: 4},
					{Path: []string{"p", ".pad", "3"}, Length: 3, Offset: 5, Padding: true, Attr: "p"},
					{Path: []string{"p", "c"}, Length: 1, Offset: 8},
				},
			},
		},
		{
			name: "utf-8 names preferred",
			info: func() map[string]any {
				m := multiInfo("legacy\xff", 10,
					map[string]any{"length": int64(3), "path": []string{"old"}, "path.utf-8": []string{"neu", "ü"}},
				)
				m["name.utf-8"] = "Grüße"
				return m
			}(),
			want: want{
				name: "Grüße", length: 3, pieces: 1, lastLen: 3,
				files: []File{{Path: []string{"Grüße", "neu", "ü"}, Length: 3}},
			},
		},
		{
			name: "zero-length torrent",
			info: singleInfo("nothing", 16<<10, 0),
			want: want{name: "nothing", files: []File{{Path: []string{"nothing"}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := enc(t, tt.info)
			info, err := ParseInfo(raw)
			if err != nil {
				t.Fatal(err)
			}
			if info.Name != tt.want.name || info.Length != tt.want.length ||
				info.NumPieces() != tt.want.pieces || info.Private != tt.want.private {
				t.Errorf("got name %q length %d pieces %d private %v, want %+v",
					info.Name, info.Length, info.NumPieces(), info.Private, tt.want)
			}
			if n := info.NumPieces(); n > 0 && info.PieceSize(n-1) != tt.want.lastLen {
				t.Errorf("last piece %d bytes, want %d", info.PieceSize(n-1), tt.want.lastLen)
			}
			if !reflect.DeepEqual(info.Files, tt.want.files) {
				t.Errorf("files:\n got %+v\nwant %+v", info.Files, tt.want.files)
			}
			if !bytes.Equal(info.Raw, raw) || info.InfoHash != sha1.Sum(raw) {
				t.Error("Raw or InfoHash not of the input bytes")
			}
		})
	}
}

func TestParseInfoInvalid(t *testing.T) {
	with := func(m map[string]any, k string, v any) map[string]any {
		m = maps.Clone(m)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	base := singleInfo("f", 16<<10, 40000)
	unsafe := func(path ...string) map[string]any { return multiInfo("d", 16, file(1, path...)) }
	tests := []struct {
		name   string
		info   any
		unsafe bool   // errors.Is(err, ErrUnsafePath)
		substr string // in the error, if set
	}{
		{name: "path ..", info: unsafe("a", ".."), unsafe: true},
		{name: "path .", info: unsafe(".", "a"), unsafe: true},
		{name: "empty component", info: unsafe("a", "", "b"), unsafe: true},
		{name: "empty path", info: unsafe(), unsafe: true},
		{name: "absolute", info: unsafe("/abs"), unsafe: true},
		{name: "separator in component", info: unsafe("a/b"), unsafe: true},
		{name: "NUL", info: unsafe("a\x00b"), unsafe: true},
		{name: "backslash", info: unsafe(`a\b`), unsafe: true},
		{name: "name ..", info: with(base, "name", ".."), unsafe: true},
		{name: "name empty", info: with(base, "name", ""), unsafe: true},
		{name: "name with slash", info: with(base, "name", "a/b"), unsafe: true},
		{name: "unsafe utf-8 name", info: with(base, "name.utf-8", "../x"), unsafe: true},
		{name: "unsafe utf-8 path", info: multiInfo("d", 16,
			map[string]any{"length": int64(1), "path": []string{"ok"}, "path.utf-8": []string{".."}}), unsafe: true},
		{name: "path too long", info: unsafe(strings.Repeat("a", 2000), strings.Repeat("b", 2100)), substr: "longer"},
		{name: "missing name", info: with(base, "name", nil), substr: "name"},
		{name: "piece length 0", info: with(base, "piece length", int64(0)), substr: "piece length"},
		{name: "piece length negative", info: with(base, "piece length", int64(-16384)), substr: "piece length"},
		{name: "piece length too big", info: with(base, "piece length", int64(MaxPieceLength+1)), substr: "piece length"},
		{name: "missing piece length", info: with(base, "piece length", nil), substr: "piece length"},
		{name: "pieces not multiple of 20", info: with(base, "pieces", pieceHashes(3)+"x"), substr: "multiple"},
		{name: "too few pieces", info: with(base, "pieces", pieceHashes(2)), substr: "want 3"},
		{name: "too many pieces", info: with(base, "pieces", pieceHashes(4)), substr: "want 3"},
		{name: "missing pieces", info: with(base, "pieces", nil), substr: "pieces"},
		{name: "length and files", info: with(base, "files", []any{file(40000, "a")}), substr: "both"},
		{name: "neither length nor files", info: with(base, "length", nil), substr: "neither"},
		{name: "empty files", info: with(with(base, "length", nil), "files", []any{}), substr: "empty files"},
		{name: "negative length", info: with(base, "length", int64(-1)), substr: "negative"},
		{name: "negative file length", info: multiInfo("d", 16, file(-5, "a"), file(21, "b")), substr: "negative"},
		{name: "file without length", info: multiInfo("d", 16, map[string]any{"path": []string{"a"}}), substr: "missing length"},
		{name: "v2-only", info: map[string]any{
			"name": "v2", "piece length": int64(16 << 10), "meta version": int64(2),
			"file tree": map[string]any{"a": map[string]any{"": map[string]any{"length": int64(1)}}},
		}, substr: "v2-only torrents are not supported"},
		{name: "duplicate paths", info: multiInfo("d", 16, file(1, "a", "b"), file(2, "c"), file(3, "a", "b")), substr: "duplicate"},
		{name: "file is a directory", info: multiInfo("d", 16, file(1, "a", "b", "c"), file(2, "a", "b")), substr: "directory"},
		{name: "file is a directory, far apart", info: multiInfo("d", 16, file(1, "a"), file(1, "a-"), file(2, "a", "z", "y")), substr: "directory"},
		{name: "wrong type", info: with(base, "length", "many"), substr: ""},
		{name: "not a dict", info: []any{base}, substr: "dictionary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInfo(enc(t, tt.info))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidInfo) {
				t.Errorf("%v does not wrap ErrInvalidInfo", err)
			}
			if errors.Is(err, ErrUnsafePath) != tt.unsafe {
				t.Errorf("errors.Is(%v, ErrUnsafePath) = %v, want %v", err, !tt.unsafe, tt.unsafe)
			}
			if !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("error %q does not mention %q", err, tt.substr)
			}
		})
	}
	t.Run("v2-only is ErrV2Only", func(t *testing.T) {
		_, err := ParseInfo([]byte("d9:file treede12:meta versioni2e4:name2:v212:piece lengthi16384ee"))
		if !errors.Is(err, ErrV2Only) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("too many files", func(t *testing.T) {
		// The one file's encoding repeated, as the encoder would write
		// MaxFiles+1 of them: through reflection, 2 s under -race.
		one := enc(t, file(0, "f"))
		raw := bytes.Replace(enc(t, multiInfo("d", 16, file(0, "f"))), one, bytes.Repeat(one, MaxFiles+1), 1)
		_, err := ParseInfo(raw)
		if err == nil || !strings.Contains(err.Error(), "files") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		// Written out as the encoder would, which takes 1.5 s under -race
		// for the 16 MiB string.
		raw := fmt.Appendf(nil, "d4:name1:x3:pad%d:", MaxMetadataSize)
		raw = append(append(raw, make([]byte, MaxMetadataSize)...), 'e')
		if _, err := ParseInfo(raw); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for _, s := range []string{"", "d", "de", "i3e", "d4:name", "d4:namei3ee",
			"d4:name1:x12:piece lengthi1e6:pieces0:6:lengthi0eexx", strings.Repeat("l", 100000),
			"d4:name-1:x", "d4:name99999999999:x"} {
			if _, err := ParseInfo([]byte(s)); err == nil {
				t.Errorf("ParseInfo(%.40q) succeeded", s)
			}
		}
	})
}

// The info-hash is over the bytes as given: key order, unknown keys and
// all. A re-encoding would sort keys and drop "x-custom", and hash to
// something else.
func TestInfoHashOverRawBytes(t *testing.T) {
	pieces := pieceHashes(1)
	// Keys deliberately out of order, and an unknown key first.
	raw := []byte("d8:x-custom5:hello4:name3:abc6:lengthi10e12:piece lengthi16384e6:pieces20:" + pieces + "e")
	info, err := ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	if info.InfoHash != sha1.Sum(raw) {
		t.Fatal("info-hash not over the raw bytes")
	}
	if reenc := enc(t, singleInfo("abc", 16384, 10)); sha1.Sum(reenc) == info.InfoHash {
		t.Fatal("test is vacuous: re-encoding hashes the same")
	}

	torrent := []byte("d7:comment2:hi4:info" + string(raw) + "e")
	m, err := ParseMetaInfo(torrent)
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.InfoHash != sha1.Sum(raw) || !bytes.Equal(m.Info.Raw, raw) {
		t.Fatal("ParseMetaInfo: info-hash not over the raw info bytes")
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, raw) {
		t.Fatalf("Marshal did not keep the raw info: %q", out)
	}
	m2, err := ParseMetaInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Info.InfoHash != m.Info.InfoHash || m2.Comment != "hi" {
		t.Fatal("round trip changed the torrent")
	}
}

func TestInfoHashString(t *testing.T) {
	var h InfoHash
	h[0], h[19] = 0xAB, 0x01
	if got, want := h.String(), "ab"+strings.Repeat("0", 36)+"01"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// Control characters in names reach neither the disk nor a terminal: they
// become '_', in the name and in every path component, while the info-hash
// stays over the bytes as given.
func TestParseInfoSanitizesControlChars(t *testing.T) {
	raw := enc(t, multiInfo("evil\x1b[2J\rname", 16,
		file(1, "sub\ndir", "f\x7f\x01é\xff"), file(2, "plain")))
	info, err := ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "evil_[2J_name" {
		t.Errorf("Name %q", info.Name)
	}
	// Non-ASCII and invalid UTF-8 are not control characters.
	want := [][]string{{"evil_[2J_name", "sub_dir", "f__é\xff"}, {"evil_[2J_name", "plain"}}
	for i, f := range info.Files {
		if !slices.Equal(f.Path, want[i]) {
			t.Errorf("file %d: path %q, want %q", i, f.Path, want[i])
		}
	}
	if info.InfoHash != sha1.Sum(raw) {
		t.Error("info-hash not over the raw bytes")
	}
	single, err := ParseInfo(enc(t, singleInfo("a\tb", 16, 1)))
	if err != nil || single.Name != "a_b" || !slices.Equal(single.Files[0].Path, []string{"a_b"}) {
		t.Fatalf("single-file: %v %+v", err, single)
	}

	_, err = ParseInfo(enc(t, multiInfo("d", 16, file(1, "a\x01"), file(1, "a\x02"))))
	if err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("names equal once sanitized: %v", err)
	}
	_, err = ParseInfo(enc(t, singleInfo("a\x00b", 16, 1)))
	if !errors.Is(err, ErrUnsafePath) {
		t.Errorf("NUL: %v", err)
	}
}
