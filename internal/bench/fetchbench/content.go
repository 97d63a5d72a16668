package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path"
	"sort"

	"node/internal/bench/benchkit"
)

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
func generate(dir, name string, total int64, n int, pieceLen int64, single bool) ([]benchkit.SourceFile, error) {
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
	var out []benchkit.SourceFile
	for i, size := range sizes {
		rel := name
		if !single {
			rel = path.Join(name, folders[i%len(folders)], fmt.Sprintf("file-%02d.bin", i))
		}
		sf, err := benchkit.WriteFile(dir, rel, size, gen, buf)
		if err != nil {
			return nil, err
		}
		out = append(out, sf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}
