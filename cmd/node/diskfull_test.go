package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"node/metadata"
)

// mountTmpfs mounts a tmpfs of size at dir, or skips the test where that
// is not allowed (it needs root).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// A download onto a full disk stops with a clear message and its own exit
// code, and the same command resumes it once there is space.
func TestFetchDiskFullThenResume(t *testing.T) {
	boot := startNetwork(t, 66, 6)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "big"), map[string]int{"a.bin": 3 << 20, "b.bin": 2 << 20})
	mi, err := metadata.Create(filepath.Join(src, "big"), metadata.CreateOptions{PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	seedInProcess(t, "127.0.66.50", boot, mi, src, 0)

	dst := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, dst, "2m")
	args := []string{"fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--listen", "127.0.66.100:0", "--bootstrap", boot, "--dir", dst, "--timeout", "30s", mi.Magnet()}
	code, _, errOut := runCmd(args...)
	if code != exitDiskFull || !strings.Contains(errOut, "disk full") || !strings.Contains(errOut, "resume") {
		t.Fatalf("onto a 2 MiB disk: exit %d, stderr %q; want %d and a clear message", code, errOut, exitDiskFull)
	}
	// Make room, as a user would, and run the same command again.
	if out, err := exec.Command("mount", "-o", "remount,size=16m", dst).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	code, _, errOut = runCmd(args...)
	if code != exitOK {
		t.Fatalf("after making room: exit %d\n%s", code, errOut)
	}
	sameFiles(t, filepath.Join(src, "big"), filepath.Join(dst, "big"))
}
