//go:build unix

package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A written file replaced by a FIFO before the save that syncs it does not
// hang the save: opening a FIFO to read waits for a writer.
func TestSaveResumeFileReplacedByFIFO(t *testing.T) {
	info, content := singleFile(t)
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	defer s.Close()
	if _, _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	writePieces(t, s, info, content, []int{0}, 1)
	s.dropHandles() // closed, so the save syncs it by name
	path := filepath.Join(dir, "single.iso")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.SaveResume() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("SaveResume: %v", err)
		}
	case <-time.After(10 * time.Second):
		// Let the stuck open return, so the goroutine ends.
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("SaveResume blocked on a FIFO at the file's path")
	}
}
