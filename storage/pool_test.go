//go:build linux

package storage

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"node/metadata"
)

// manyFiles is a torrent of n tiny files in a few directories, each piece
// spanning hundreds of them.
func manyFiles(t testing.TB, n int) (*metadata.Info, []byte) {
	r := rand.New(rand.NewPCG(uint64(n), 3))
	specs := make([]fileSpec, n)
	for i := range specs {
		specs[i] = fileSpec{path: []string{"many", fmt.Sprintf("d%02d", i%17), fmt.Sprintf("f%04d", i)}, length: 1 + r.Int64N(40)}
	}
	return buildInfo(t, 8, "many", 4096, specs)
}

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents) - 1 // ReadDir's own
}

// limitFDs lowers the soft descriptor limit to n until the test ends.
func limitFDs(t *testing.T, n uint64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	lim := old
	lim.Cur = min(n, old.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// A torrent of 1,000 files is written, verified and read back under a
// descriptor limit a tenth of its file count, and the open descriptors
// never exceed the pool's bound: each pool entry may hold a second,
// direct descriptor, and the slack covers the sync of a closed file.
func TestManyFilesBoundedDescriptors(t *testing.T) {
	// Each file costs a create and an fsync on eviction: 3,000 took 12 s
	// under load and reached the same peak as 1,000.
	info, content := manyFiles(t, 1000)
	dir := t.TempDir()
	base := openFDs(t)
	const slack = 4
	bound := 2*maxOpenFiles + slack
	limitFDs(t, uint64(base+bound+16))
	peak := 0
	check := func(what string) {
		t.Helper()
		n := openFDs(t) - base
		peak = max(peak, n)
		if n > bound {
			t.Fatalf("%s: %d descriptors open beyond the %d at start, bound %d", what, n, base, bound)
		}
	}

	s := mustOpen(t, dir, info)
	s.SetDirectIO(true)
	for p := range info.NumPieces() {
		off := int64(p) * info.PieceLength
		if err := s.WriteBlock(p, 0, content[off:off+info.PieceSize(p)]); err != nil {
			t.Fatalf("WriteBlock(%d): %v", p, err)
		}
		s.MarkComplete(p)
		check(fmt.Sprintf("writing piece %d", p))
	}
	if err := s.SaveResume(); err != nil {
		t.Fatalf("SaveResume: %v", err)
	}
	check("saving resume")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
	checkFiles(t, dir, info, content)

	// Verification as a seed does it at start: no resume record, so
	// every piece is hashed and every file checked as possibly foreign.
	if err := os.RemoveAll(filepath.Join(dir, resumeDirName)); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, info)
	defer s.Close()
	n, fast, err := s.Recover()
	if err != nil || fast || n != info.NumPieces() {
		t.Fatalf("Recover = %d, fast %v, %v; want all %d by hashing", n, fast, err, info.NumPieces())
	}
	check("recovered")
	// Serving: every file read on its own, in an order that defeats the
	// pool's recency.
	r := rand.New(rand.NewPCG(1, 2))
	for _, i := range r.Perm(len(info.Files)) {
		f := info.Files[i]
		buf := make([]byte, f.Length)
		if _, err := s.ReadAt(buf, f.Offset); err != nil {
			t.Fatalf("reading file %d: %v", i, err)
		}
		if string(buf) != string(content[f.Offset:f.Offset+f.Length]) {
			t.Fatalf("file %d: wrong content", i)
		}
		check(fmt.Sprintf("reading file %d", i))
	}
	t.Logf("%d files: at most %d descriptors open (bound %d)", len(info.Files), peak, bound)
}

// Reads and writes from many goroutines over many more files than the pool
// holds: files are evicted while others use them, and none is closed under
// a read or write in progress (that would fail with os.ErrClosed, and the
// race detector would see it).
func TestPoolEvictionUnderConcurrentIO(t *testing.T) {
	info, content := manyFiles(t, 600)
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	defer s.Close()
	s.SetDirectIO(true)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 200 {
				f := info.Files[r.IntN(len(info.Files))]
				want := content[f.Offset : f.Offset+f.Length]
				if _, err := s.WriteAt(want, f.Offset); err != nil {
					errs <- fmt.Errorf("write: %w", err)
					return
				}
				buf := make([]byte, f.Length)
				if _, err := s.ReadAt(buf, f.Offset); err != nil {
					errs <- fmt.Errorf("read: %w", err)
					return
				}
				if string(buf) != string(want) {
					errs <- fmt.Errorf("read back wrong data at %d", f.Offset)
					return
				}
				if r.IntN(50) == 0 {
					if err := s.syncAll(); err != nil {
						errs <- fmt.Errorf("sync: %w", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.mu.Lock()
	n := s.pool.Len()
	s.mu.Unlock()
	if n > maxOpenFiles {
		t.Errorf("pool holds %d files, bound %d", n, maxOpenFiles)
	}
}
