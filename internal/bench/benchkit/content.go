package benchkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"node/metadata"
)

// SourceFile is one generated file: its path below the download
// directory (the torrent's name first, slash-separated) and the SHA-256
// of its bytes.
type SourceFile struct {
	Rel    string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// WriteFile writes size bytes read from gen (a pseudo-random stream) to
// dir/rel, making its folders, through buf, and returns it with the
// SHA-256 of its bytes.
func WriteFile(dir, rel string, size int64, gen io.Reader, buf []byte) (SourceFile, error) {
	full := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return SourceFile{}, err
	}
	f, err := os.Create(full)
	if err != nil {
		return SourceFile{}, err
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	for left := size; left > 0; {
		b := buf[:min(int64(len(buf)), left)]
		_, _ = gen.Read(b)
		if _, err := w.Write(b); err != nil {
			f.Close()
			return SourceFile{}, err
		}
		left -= int64(len(b))
	}
	if err := f.Close(); err != nil {
		return SourceFile{}, err
	}
	return SourceFile{Rel: rel, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Verify checks that dir holds every source file with the same size and
// SHA-256.
func Verify(dir string, want []SourceFile) error {
	buf := make([]byte, 1<<20)
	for _, sf := range want {
		p := filepath.Join(dir, filepath.FromSlash(sf.Rel))
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, f, buf)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if n != sf.Size {
			return fmt.Errorf("%s: %d bytes, want %d", sf.Rel, n, sf.Size)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sf.SHA256 {
			return fmt.Errorf("%s: SHA-256 %s, want %s", sf.Rel, got, sf.SHA256)
		}
	}
	return nil
}

// LinkCopy makes dir/name a copy of the content tree dir/base whose files
// are hard links to the originals (no bytes copied), and returns its files
// (with their paths under the new name), in path order. Under another
// name the same bytes make another torrent, with another info-hash.
func LinkCopy(dir, base, name string, files []SourceFile) ([]SourceFile, error) {
	out := make([]SourceFile, len(files))
	for i, sf := range files {
		rest, ok := strings.CutPrefix(sf.Rel, base)
		if !ok || rest != "" && rest[0] != '/' {
			return nil, fmt.Errorf("%s is not under %s", sf.Rel, base)
		}
		sf.Rel = name + rest
		to := filepath.Join(dir, filepath.FromSlash(sf.Rel))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return nil, err
		}
		if err := os.Link(filepath.Join(dir, filepath.FromSlash(files[i].Rel)), to); err != nil {
			return nil, err
		}
		out[i] = sf
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

// CreateTorrent makes the torrent of dir/name with pieces of pieceLen
// bytes, and its encoding (a .torrent file's bytes).
func CreateTorrent(dir, name string, pieceLen int64) (*metadata.MetaInfo, []byte, error) {
	mi, err := metadata.Create(filepath.Join(dir, name), metadata.CreateOptions{PieceLength: pieceLen})
	if err != nil {
		return nil, nil, err
	}
	b, err := mi.Marshal()
	if err != nil {
		return nil, nil, err
	}
	return mi, b, nil
}
