package metadata

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// addTorrentSeeds adds the committed .torrent files, or their info dicts.
func addTorrentSeeds(f *testing.F, infoOnly bool) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.torrent"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no testdata torrents: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if infoOnly {
			m, err := ParseMetaInfo(b)
			if err != nil {
				f.Fatal(err)
			}
			b = m.Info.Raw
		}
		f.Add(b)
	}
}

func FuzzParseInfo(f *testing.F) {
	addTorrentSeeds(f, true)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseInfo(b)
		if err != nil {
			return
		}
		again, err := ParseInfo(info.Raw)
		if err != nil {
			t.Fatalf("ParseInfo(Raw): %v", err)
		}
		if !reflect.DeepEqual(info, again) {
			t.Fatal("ParseInfo(Raw) differs")
		}
		var off int64
		for _, fl := range info.Files {
			if fl.Offset != off || fl.Length < 0 {
				t.Fatalf("bad layout %+v", info.Files)
			}
			off += fl.Length
			if err := checkPath(fl.Path); err != nil {
				t.Fatalf("unsafe path accepted: %v", err)
			}
		}
		if off != info.Length {
			t.Fatalf("files add up to %d, Length %d", off, info.Length)
		}
		if n := info.NumPieces(); n > 0 && (info.PieceSize(n-1) <= 0 || info.PieceSize(n-1) > info.PieceLength) {
			t.Fatalf("last piece %d bytes", info.PieceSize(n-1))
		}
	})
}

func FuzzParseMetaInfo(f *testing.F) {
	addTorrentSeeds(f, false)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetaInfo(b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed torrent: %v", err)
		}
		again, err := ParseMetaInfo(out)
		if err != nil {
			t.Fatalf("ParseMetaInfo(Marshal): %v", err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, again)
		}
	})
}

func FuzzParseMetadataMsg(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, data, err := ParseMetadataMsg(b)
		if err != nil {
			return
		}
		out, err := m.Append(nil, data)
		if err != nil {
			t.Fatalf("Append of a parsed message: %v", err)
		}
		m2, data2, err := ParseMetadataMsg(out)
		if err != nil {
			t.Fatalf("ParseMetadataMsg(Append): %v", err)
		}
		if m != m2 || !bytes.Equal(data, data2) {
			t.Fatalf("round trip differs: %+v %+v", m, m2)
		}
	})
}

// TestWriteFuzzSeeds rewrites the committed seed corpora with -update.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("only with -update")
	}
	torrents := goldenTorrents(t)
	infoOf := func(name string) []byte {
		m, err := ParseMetaInfo(torrents[name])
		if err != nil {
			t.Fatal(err)
		}
		return m.Info.Raw
	}
	pieces := string(make([]byte, 20))
	hybrid := enc(t, map[string]any{
		"name": "h", "piece length": int64(4), "meta version": int64(2),
		"pieces": pieces + pieces + pieces,
		"files": []any{
			map[string]any{"length": int64(1), "path": []string{"a"}},
			map[string]any{"length": int64(3), "path": []string{".pad", "3"}, "attr": "p"},
			map[string]any{"length": int64(5), "path": []string{"b", "c"}, "path.utf-8": []string{"b", "ç"}},
		},
		"file tree": map[string]any{"a": map[string]any{"": map[string]any{"length": int64(1)}}},
	})
	seeds := map[string][][]byte{
		"FuzzParseInfo": {
			infoOf("single.torrent"),
			infoOf("multi.torrent"),
			infoOf("private.torrent"),
			hybrid,
			[]byte("d6:lengthi10e4:name1:a12:piece lengthi16384e6:pieces20:" + pieces + "e"),
			[]byte("d8:x-custom5:hello4:name3:abc6:lengthi10e12:piece lengthi16384e6:pieces20:" + pieces + "e"),
			[]byte("d9:file treede12:meta versioni2e4:name2:v212:piece lengthi16384ee"),
			[]byte("d5:filesld6:lengthi1e4:pathl2:..eee4:name1:d12:piece lengthi16e6:pieces20:" + pieces + "e"),
			[]byte("d5:filesld6:lengthi1e4:pathl1:aeed6:lengthi1e4:pathl1:a1:beee4:name1:d12:piece lengthi16e6:pieces20:" + pieces + "e"),
			[]byte("d10:name.utf-82:ok4:name2:..6:lengthi0e12:piece lengthi1e6:pieces0:e"),
			[]byte("d4:name1:x6:lengthi-1e12:piece lengthi0e6:pieces0:e"),
			[]byte("llllllllllllllllllllllllllllllllllllllllllllllll"),
		},
		"FuzzParseMetaInfo": {
			torrents["single.torrent"],
			torrents["multi.torrent"],
			torrents["private.torrent"],
			[]byte("d8:announce5:http:13:announce-listll1:aelee7:comment2:hi10:created by4:node13:creation datei1700000000e4:info" +
				string(infoOf("single.torrent")) + "5:nodesll9:127.0.0.1i6881eel3::1i6882eel1:xi0eeee"),
			[]byte("d4:info" + string(hybrid) + "e"),
			[]byte("d4:infold4:name1:aeee"),
			[]byte("d4:infoi1ee"),
			[]byte("d5:nodes3:abc4:info" + string(infoOf("single.torrent")) + "e"),
			[]byte("de"),
			[]byte("d4:info"),
		},
		"FuzzParseMetadataMsg": {
			[]byte("d8:msg_typei0e5:piecei0ee"),
			append([]byte("d8:msg_typei1e5:piecei0e10:total_sizei34256ee"), bytes.Repeat([]byte("x"), 64)...),
			[]byte("d8:msg_typei2e5:piecei0ee"),
			[]byte("d8:msg_typei1e5:piecei1e10:total_sizei20000eedata"),
			[]byte("d8:msg_typei0e5:piecei-1ee"),
			[]byte("d8:msg_typei3e5:piecei0ee"),
			[]byte("d8:msg_typei0e5:piecei0eetrailing"),
			[]byte("d1:xd1:bi0e1:ai0ee8:msg_typei0e5:piecei0ee"),
			ServeMetadata(infoOf("single.torrent"), 0),
			[]byte("d8:msg_typei0e5:piecei0e"),
		},
	}
	for target, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range list {
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
