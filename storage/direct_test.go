package storage

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"
)

// directSupported reports whether dir's file system takes O_DIRECT.
func directSupported(t *testing.T, dir string) bool {
	t.Helper()
	p := filepath.Join(dir, "probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	d := openDirect(func(flag int) (*os.File, error) { return os.OpenFile(p, flag, 0) }, nil)
	if d == nil {
		return false
	}
	d.Close()
	return true
}

// TestDirectWrites writes whole pieces, concurrently and in random order,
// with direct I/O on, into files whose starts and ends fall at every kind
// of alignment (file starts on and off 4 KiB boundaries, sizes that are
// and are not multiples of it, files smaller than a page, a file that
// ends inside the page another starts in), then reads everything back
// through the page cache.
func TestDirectWrites(t *testing.T) {
	const pieceLen = 64 << 10
	info, content := buildInfo(t, 9, "direct", pieceLen, []fileSpec{
		{path: []string{"direct", "aligned"}, length: 3 * 4096},
		{path: []string{"direct", "odd"}, length: 100_003},
		{path: []string{"direct", "tiny"}, length: 17},
		{path: []string{"direct", "big-unaligned-start"}, length: 300_000},
		{path: []string{"direct", "pad"}, length: 4096 - (3*4096+100_003+17+300_000)%4096, padding: true},
		{path: []string{"direct", "big-aligned-start"}, length: 256 << 10},
		{path: []string{"direct", "last"}, length: 5000},
	})
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	defer s.Close()
	s.SetDirectIO(true)

	order := rand.New(rand.NewPCG(3, 4)).Perm(info.NumPieces())
	var wg sync.WaitGroup
	errs := make(chan error, len(order))
	for _, p := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(p) * info.PieceLength
			// A copy, as the client's piece buffers are: the direct path
			// must cope with whatever alignment the buffer has.
			buf := append([]byte(nil), content[off:off+info.PieceSize(p)]...)
			if err := s.WriteBlock(p, 0, buf); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := make([]byte, info.Length)
	if _, err := s.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Fatal("content read back differs from what was written")
	}
	checkFiles(t, dir, info, content)
	if directSupported(t, dir) {
		if s.DirectBytes() < info.Length/2 {
			t.Errorf("only %d of %d bytes went by direct I/O", s.DirectBytes(), info.Length)
		}
	} else {
		t.Logf("%s does not take O_DIRECT: checked the fallback only", dir)
	}
	for p := range info.NumPieces() {
		if ok, err := s.VerifyPiece(p); !ok || err != nil {
			t.Fatalf("piece %d: verified %v, %v", p, ok, err)
		}
	}
}

// TestDirectOffByDefault: without SetDirectIO, nothing goes direct.
func TestDirectOffByDefault(t *testing.T) {
	info, content := singleFile(t)
	s := mustOpen(t, t.TempDir(), info)
	defer s.Close()
	writePieces(t, s, info, content, allPieces(info), 1)
	if s.DirectBytes() != 0 {
		t.Fatalf("%d bytes went direct with direct I/O off", s.DirectBytes())
	}
}

// TestAligned cuts buffers at every kind of offset from memory of every
// kind of alignment, as peer's piece buffers and the scratch memory of
// unaligned writes do, and checks each starts where asked.
func TestAligned(t *testing.T) {
	const n = 3*DirectAlign + 17
	for _, shift := range []int{0, 1, 511, DirectAlign - 1} {
		raw := make([]byte, shift+len(NewAligned(n)))[shift:]
		for _, off := range []int{0, 1, 512, DirectAlign - 1, DirectAlign, DirectAlign + 5} {
			b := Aligned(raw, off, n)
			if len(b) != n {
				t.Fatalf("len = %d, want %d", len(b), n)
			}
			if got := int(uintptr(unsafe.Pointer(&b[0])) % DirectAlign); got != off%DirectAlign {
				t.Errorf("shift %d, offset %d: address mod %d = %d", shift, off, DirectAlign, got)
			}
		}
	}
}

// The direct descriptor is opened again by name; if the name now leads to
// another file (a directory on its path swapped for a symlink), it is
// refused, and the writes stay on the handle already open.
func TestOpenDirectChecksSameFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	d := openDirect(func(flag int) (*os.File, error) { return os.OpenFile(a, flag, 0) }, fi)
	if d == nil {
		t.Skip("no direct I/O here")
	}
	d.Close()
	if d := openDirect(func(flag int) (*os.File, error) { return os.OpenFile(b, flag, 0) }, fi); d != nil {
		d.Close()
		t.Fatal("opened another file than the handle's")
	}
}
