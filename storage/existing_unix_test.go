//go:build unix

package storage

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Something that is not a regular file at a file's path (a directory, a
// FIFO, which would block a reader) is refused like other data, at once.
func TestForeignNotRegular(t *testing.T) {
	info, _ := singleFile(t)
	for name, make := range map[string]func(string) error{
		"directory": func(p string) error { return os.Mkdir(p, 0o755) },
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := make(filepath.Join(dir, "single.iso")); err != nil {
				t.Skip(err)
			}
			s := mustOpen(t, dir, info)
			defer s.Close()
			if _, _, err := s.Recover(); !errors.Is(err, ErrForeignData) {
				t.Fatalf("Recover: %v, want ErrForeignData", err)
			}
		})
	}
}
