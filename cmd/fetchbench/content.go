package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// sourceFile is one generated file: its path below the download
// directory (the torrent's name first) and the SHA-256 of its bytes.
type sourceFile struct {
	Rel    string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// folders the files are spread over, nested a couple of levels.
var folders = []string{"", "alpha", "alpha/beta", "alpha/beta/gamma", "delta", "delta/epsilon"}

// fileSizes splits total bytes into n sizes of varied magnitude, none of
// them zero nor, when n > 1, a multiple of pieceLen (so that pieces
// straddle files).
func fileSizes(total int64, n int, pieceLen int64, r *rand.Rand) []int64 {
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = 0.2 + r.Float64()*r.Float64()*4 // a few big ones, many small
		sum += w[i]
	}
	sizes := make([]int64, n)
	var got int64
	for i := range sizes {
		sizes[i] = max(1, int64(float64(total)*w[i]/sum))
		got += sizes[i]
	}
	sizes[n-1] += total - got // exact total
	// Nudge any multiple of the piece length by moving one byte along.
	for i := range sizes {
		if sizes[i]%pieceLen == 0 {
			j := (i + 1) % n
			sizes[i]++
			sizes[j]--
		}
	}
	return sizes
}

// generate writes n files of pseudo-random bytes, totalling total bytes,
// as dir/name: a folder of files in nested folders, or with single (n = 1)
// the one file itself. It returns them with their SHA-256, in path order.
// The bytes depend on total and n, so that two contents never share
// pieces.
func generate(dir, name string, total int64, n int, pieceLen int64, single bool) ([]sourceFile, error) {
	if n < 1 || total < int64(n)*2 || single && n != 1 {
		return nil, fmt.Errorf("cannot make %d files of %d bytes in all (single: %v)", n, total, single)
	}
	r := rand.New(rand.NewPCG(20240601, uint64(n)))
	sizes := fileSizes(total, n, pieceLen, r)
	var seed [32]byte
	copy(seed[:], "fetchbench content")
	binary.LittleEndian.PutUint64(seed[20:], uint64(total))
	binary.LittleEndian.PutUint32(seed[28:], uint32(n))
	gen := rand.NewChaCha8(seed)
	buf := make([]byte, 4<<20)
	var out []sourceFile
	for i, size := range sizes {
		rel := name
		if !single {
			rel = path.Join(name, folders[i%len(folders)], fmt.Sprintf("file-%02d.bin", i))
		}
		full := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(full)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		w := io.MultiWriter(f, h)
		for left := size; left > 0; {
			b := buf[:min(int64(len(buf)), left)]
			_, _ = gen.Read(b)
			if _, err := w.Write(b); err != nil {
				f.Close()
				return nil, err
			}
			left -= int64(len(b))
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		out = append(out, sourceFile{Rel: rel, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

// verify checks that dir holds every source file with the same size and
// SHA-256.
func verify(dir string, want []sourceFile) error {
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

// linkCopy makes dir/name a copy of the content tree dir/base whose files
// are hard links to the originals (no bytes copied), and returns its files
// (with their paths under the new name). Under another name the same
// bytes make another torrent, with another info-hash.
func linkCopy(dir, base, name string, files []sourceFile) ([]sourceFile, error) {
	out := make([]sourceFile, len(files))
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
