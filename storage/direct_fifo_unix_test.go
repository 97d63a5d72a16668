//go:build unix

package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A file's name swapped for a FIFO before its direct descriptor is
// opened by that name does not block the write (which holds the
// storage's lock): no direct I/O for it, the data goes through the
// handle already open.
func TestDirectOpenOfSwappedFIFO(t *testing.T) {
	info, content := buildInfo(t, 7, "fifo", 16<<10, []fileSpec{{path: []string{"fifo", "f"}, length: 64 << 10}})
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	defer s.Close()
	if _, _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	// The handle opens (direct I/O off), then the name becomes a FIFO.
	if err := s.WriteBlock(0, 0, content[:16<<10]); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "fifo", "f")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	s.SetDirectIO(true)
	done := make(chan error, 1)
	go func() { done <- s.WriteBlock(1, 0, content[16<<10:32<<10]) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WriteBlock: %v", err)
		}
	case <-time.After(20 * time.Second):
		// A reader lets the blocked open return, so Close can run.
		if r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer r.Close()
		}
		t.Fatal("WriteBlock blocked opening the FIFO for direct I/O")
	}
	if n := s.DirectBytes(); n != 0 {
		t.Fatalf("%d bytes went direct, to whatever holds the name now", n)
	}
}
