package storage

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// A file larger than the free space does not take all of it at its first
// write: ext4's fallocate, when it runs out of room, keeps the blocks it
// got and the length they reach, which left the disk full, so that a
// small file of the same torrent could no longer be written nor the
// resume record saved. Needs root, mkfs.ext4 and a loop device (a file
// system of its own, 32 MiB, mounted in the test's directory and
// unmounted after); skipped otherwise.
func TestPreallocNoRoomLeavesRoom(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a loop ext4")
	}
	tmp := t.TempDir()
	img, mnt := filepath.Join(tmp, "ext4.img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("mount -o loop: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	free := func() int64 {
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(mnt, &sfs); err != nil {
			t.Fatal(err)
		}
		return int64(sfs.Bavail) * sfs.Bsize
	}
	before := free()
	const pl = 256 << 10
	big := (2*before/pl + 1) * pl // twice the free space, in whole pieces
	info, content := buildInfo(t, 12, "t", pl, []fileSpec{
		{path: []string{"t", "big"}, length: big},
		{path: []string{"t", "small"}, length: pl},
	})
	s := mustOpen(t, mnt, info)
	defer s.Close()
	if err := s.WriteBlock(0, 0, content[:blockSize]); err != nil {
		t.Fatalf("first write of the big file: %v", err)
	}
	if after := free(); after < before/2 {
		t.Errorf("free space %d after the big file's first write, %d before", after, before)
	}
	last := info.NumPieces() - 1
	off := int64(last) * pl
	if err := s.WriteBlock(last, 0, content[off:off+blockSize]); err != nil {
		t.Errorf("writing 16 KiB of the small file: %v", err)
	}
	if err := s.SaveResume(); err != nil {
		t.Errorf("SaveResume: %v", err)
	}
}
