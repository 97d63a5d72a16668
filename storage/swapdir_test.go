package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"node/metadata"
)

// A directory on the torrent's paths swapped for a symlink out of the
// download directory after Open is not written through: not into a file
// there (which the write would truncate and overwrite), nor by creating
// directories there. A relative symlink that stays inside is still
// followed, as Open allows.
func TestWriteThroughSwappedDir(t *testing.T) {
	info, content := buildInfo(t, 5, "top", 16<<10, []fileSpec{
		{path: []string{"top", "sub", "new", "g"}, length: 10},
		{path: []string{"top", "sub", "f"}, length: 10},
	})
	dir, outside := t.TempDir(), t.TempDir()
	sub := filepath.Join(dir, "top", "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "f")
	if err := os.WriteFile(victim, []byte("someone's long precious file"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir, info)
	defer s.Close()
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, sub); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBlock(0, 0, content); !errors.Is(err, metadata.ErrUnsafePath) {
		t.Fatalf("WriteBlock through the swapped directory: %v, want ErrUnsafePath", err)
	}
	if got, err := os.ReadFile(victim); err != nil || string(got) != "someone's long precious file" {
		t.Fatalf("the file outside: %q, %v", got, err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "new")); !os.IsNotExist(err) {
		t.Fatalf("a directory was made outside: %v", err)
	}
	// Inside is allowed: top/sub -> real (top/real), a relative link. An
	// absolute one is not followed, even to the same place: the open
	// walks from the download directory, whose own path it does not use.
	real := filepath.Join(dir, "top", "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, sub); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBlock(0, 0, content); !errors.Is(err, metadata.ErrUnsafePath) {
		t.Fatalf("WriteBlock through an absolute link inside: %v, want ErrUnsafePath", err)
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", sub); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBlock(0, 0, content); err != nil {
		t.Fatalf("WriteBlock through a link inside: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(real, "new", "g")); err != nil || string(got) != string(content[:10]) {
		t.Fatalf("top/real/new/g: %q, %v", got, err)
	}
}

// A directory swapped for a symlink out of the download directory after
// the checks by name and before the open (the race they leave) is not
// followed: the open walks from the download directory.
func TestSwapBetweenCheckAndOpen(t *testing.T) {
	info, content := buildInfo(t, 5, "top", 16<<10, []fileSpec{
		{path: []string{"top", "sub", "f"}, length: 10},
	})
	dir, outside := t.TempDir(), t.TempDir()
	sub := filepath.Join(dir, "top", "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "f")
	if err := os.WriteFile(victim, []byte("someone's long precious file"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir, info)
	defer s.Close()
	swapped := false
	s.afterChecks = func(string) {
		if swapped {
			return
		}
		swapped = true
		if err := os.RemoveAll(sub); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(outside, sub); err != nil {
			t.Error(err)
		}
	}
	if err := s.WriteBlock(0, 0, content); !errors.Is(err, metadata.ErrUnsafePath) {
		t.Fatalf("WriteBlock through a directory swapped after the checks: %v, want ErrUnsafePath", err)
	}
	if !swapped {
		t.Fatal("the write never reached its open")
	}
	if got, err := os.ReadFile(victim); err != nil || string(got) != "someone's long precious file" {
		t.Fatalf("the file outside: %q, %v", got, err)
	}
}
