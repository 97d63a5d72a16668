package storage

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// fullDisk is a file whose writes fail as on a full disk; everything else
// goes to the real file.
type fullDisk struct{ *os.File }

func (fullDisk) WriteAt([]byte, int64) (int, error) { return 0, syscall.ENOSPC }

func TestENOSPCFake(t *testing.T) {
	info, content := multiFile(t)
	s, err := open(t.TempDir(), info, func(root *os.Root, name string, flag int, perm os.FileMode) (fileHandle, error) {
		f, err := root.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return fullDisk{f}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.WriteBlock(0, 0, content[:blockSize])
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteBlock error %v does not wrap ENOSPC", err)
	}
	// A block spanning two files fails on the first, with the same error.
	off := info.Files[3].Offset - 100
	if _, err := s.WriteAt(content[off:off+200], off); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt error %v does not wrap ENOSPC", err)
	}
}

// TestENOSPCReal fills a 1 MiB tmpfs. Needs root and mount; skipped otherwise.
func TestENOSPCReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount tmpfs")
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	info, content := buildInfo(t, 11, "big", 256<<10, []fileSpec{{path: []string{"big"}, length: 2 << 20}})
	s := mustOpen(t, mnt, info)
	defer s.Close()
	var werr error
	for off := int64(0); off < info.Length && werr == nil; off += blockSize {
		p := int(off / info.PieceLength)
		werr = s.WriteBlock(p, off%info.PieceLength, content[off:off+blockSize])
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("filling 1 MiB tmpfs with 2 MiB: err = %v, want ENOSPC", werr)
	}
	t.Logf("full disk error: %v", werr)
}
