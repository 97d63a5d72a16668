package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A file's first write gives it every block of its length where the file
// system can, and the data still reads back whole; where it cannot
// (probed on a file of our own), the file is sparse at its full length.
func TestFilesPreallocated(t *testing.T) {
	dir := t.TempDir()
	probe, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	canFallocate := syscall.Fallocate(int(probe.Fd()), 0, 0, 1<<20) == nil
	probe.Close()

	info, content := singleFile(t)
	s := mustOpen(t, dir, info)
	s.SetDirectIO(true)
	writePieces(t, s, info, content, []int{0}, 1)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "single.iso"), &st); err != nil {
		t.Fatal(err)
	}
	length := info.Files[0].Length
	if st.Size != length {
		t.Fatalf("size %d, want %d", st.Size, length)
	}
	allocated := st.Blocks * 512
	switch {
	case canFallocate && allocated < length:
		t.Fatalf("%d of %d bytes allocated after the first write; want all", allocated, length)
	case !canFallocate && allocated >= length:
		t.Fatalf("%d of %d bytes allocated without fallocate", allocated, length)
	}
	writePieces(t, s, info, content, allPieces(info)[1:], 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, info, content)
}
