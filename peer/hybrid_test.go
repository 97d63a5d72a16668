package peer

import (
	"crypto/sha1"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"node/metadata"
)

// hybridFile is one file entry of a v1 info dict, with BEP 47 attributes.
type hybridFile struct {
	Attr   string   `bencode:"attr,omitempty"`
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
}

// makeHybrid writes a hybrid v1+v2 style torrent's content under dir/name
// and returns its info: padding files (BEP 47, attr "p", under .pad/)
// align every file to a piece boundary, as libtorrent 2 and qBittorrent
// make them, and the v2 keys are present (and ignored by v1 clients).
func makeHybrid(t *testing.T, dir, name string, sizes []int, pieceLen int64) *metadata.Info {
	t.Helper()
	r := rand.NewChaCha8([32]byte{11, 12})
	var files []hybridFile
	var stream []byte
	for i, n := range sizes {
		b := make([]byte, n)
		_, _ = r.Read(b)
		fname := []string{"f" + string(rune('a'+i)) + ".bin"}
		full := filepath.Join(dir, name, fname[0])
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, hybridFile{Length: int64(n), Path: fname})
		stream = append(stream, b...)
		if pad := (pieceLen - int64(len(stream))%pieceLen) % pieceLen; pad > 0 && i < len(sizes)-1 {
			files = append(files, hybridFile{Attr: "p", Length: pad, Path: []string{".pad", itoa(pad)}})
			stream = append(stream, make([]byte, pad)...)
		}
	}
	var pieces []byte
	for off := int64(0); off < int64(len(stream)); off += pieceLen {
		h := sha1.Sum(stream[off:min(off+pieceLen, int64(len(stream)))])
		pieces = append(pieces, h[:]...)
	}
	raw, err := bencodeMarshal(struct {
		FileTree    map[string]any `bencode:"file tree"`
		Files       []hybridFile   `bencode:"files"`
		MetaVersion int            `bencode:"meta version"`
		Name        string         `bencode:"name"`
		PieceLength int64          `bencode:"piece length"`
		Pieces      string         `bencode:"pieces"`
	}{
		FileTree: map[string]any{"fa.bin": map[string]any{"": map[string]any{"length": sizes[0], "pieces root": string(make([]byte, 32))}}},
		Files:    files, MetaVersion: 2, Name: name, PieceLength: pieceLen, Pieces: string(pieces),
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := metadata.ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// A hybrid torrent with padding files downloads by magnet link: the real
// files are right, and the padding never reaches the disk.
func TestHybridWithPaddingFiles(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	info := makeHybrid(t, src, "hybrid", []int{100_000, 70_001, 33_333}, 32<<10)
	padding := 0
	for _, f := range info.Files {
		if f.Padding {
			padding++
		}
	}
	if padding != 2 {
		t.Fatalf("want 2 padding files, parsed %d: %+v", padding, info.Files)
	}
	ln, err := net.Listen("tcp4", "127.0.76.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: ln})
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Dir: dst, Peers: addrs(ln)})
	waitDone(t, tor, 20*time.Second)
	sameTree(t, src, dst, "hybrid")
	if _, err := os.Stat(filepath.Join(dst, "hybrid", ".pad")); !os.IsNotExist(err) {
		t.Fatalf("padding files reached the disk: %v", err)
	}
}
