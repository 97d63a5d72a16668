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

// A FIFO where the resume record should be neither holds Recover nor
// makes the torrent claim the files already there: the record is not
// trusted and every piece is hashed.
func TestResumeRecordFIFO(t *testing.T) {
	info, _ := singleFile(t)
	dir := t.TempDir()
	placeFile(t, dir, info, 0, []byte("someone's file"))
	resume := (&Storage{dir: dir, info: info}).resumePath()
	if err := os.MkdirAll(filepath.Dir(resume), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(resume, 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	s := mustOpen(t, dir, info)
	defer s.Close()
	if s.claimed {
		t.Fatal("a FIFO at the resume record's name claimed the files")
	}
	done := make(chan bool, 1)
	go func() {
		_, fast, _ := s.Recover()
		done <- fast
	}()
	select {
	case fast := <-done:
		if fast {
			t.Fatal("a FIFO was taken for the resume record")
		}
	case <-time.After(20 * time.Second):
		if w, err := os.OpenFile(resume, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close() // lets the blocked open return
		}
		t.Fatal("Recover blocked opening a FIFO as the resume record")
	}
}
