package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"node/metadata"
)

// RemoveFiles deletes the torrent's files, its resume record and the
// directories left empty; a file of someone else's beside them stays, as
// does anything a symlink at or above one of the torrent's paths leads to.
func TestRemoveFiles(t *testing.T) {
	dir := t.TempDir()
	info, content := buildInfo(t, 1, "top", 16<<10, []fileSpec{
		{path: []string{"top", "a"}, length: 20 << 10},
		{path: []string{"top", "pad"}, length: 12 << 10, padding: true},
		{path: []string{"top", "x", "y", "b"}, length: 10 << 10},
		{path: []string{"top", "z", "c"}, length: 5 << 10},
		{path: []string{"top", "w", "d"}, length: 5 << 10},
	})
	s := mustOpen(t, dir, info)
	writePieces(t, s, info, content, allPieces(info), 2)
	if err := s.SaveResume(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	mine := filepath.Join(dir, "top", "z", "mine.txt")
	if err := os.WriteFile(mine, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	// top/w -> outside: top/w/d would be outside/d.
	outside := t.TempDir()
	for _, f := range []string{"d", "b"} {
		if err := os.WriteFile(filepath.Join(outside, f), []byte("victim"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "top", "w")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "top", "w")); err != nil {
		t.Fatal(err)
	}
	// top/x/y/b -> outside/b.
	b := filepath.Join(dir, "top", "x", "y", "b")
	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "b"), b); err != nil {
		t.Fatal(err)
	}
	err := RemoveFiles(dir, info)
	if !errors.Is(err, metadata.ErrUnsafePath) {
		t.Fatalf("RemoveFiles: %v, want the symlinks reported", err)
	}
	for _, p := range []string{"d", "b"} {
		if got, err := os.ReadFile(filepath.Join(outside, p)); err != nil || string(got) != "victim" {
			t.Fatalf("%s outside: %q, %v", p, got, err)
		}
	}
	for _, p := range []string{"top/a", "top/z/c", ".node"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Fatalf("%s stays: %v", p, err)
		}
	}
	for _, p := range []string{"top/z/mine.txt", "top/w", "top/x/y/b"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("%s was removed: %v", p, err)
		}
	}
	// The same, with the links gone: everything goes, the top included.
	os.Remove(filepath.Join(dir, "top", "w"))
	os.Remove(b)
	os.Remove(mine)
	if err := RemoveFiles(dir, info); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "top")); !os.IsNotExist(err) {
		t.Fatalf("top stays: %v", err)
	}
	if _, err := os.Lstat(dir); err != nil {
		t.Fatal("the download directory itself was removed")
	}
}
