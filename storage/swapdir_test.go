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
	dir, outside, sub, victim := victimBeside(t)
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
	dir, outside, sub, victim := victimBeside(t)
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

// Open refuses the symlinks the writes would not follow (see rootRefuses):
// an absolute one, even to a place inside, and a relative one that climbs
// out of the download directory to come back in by its name. It creates
// nothing then.
func TestOpenRefusesLinksTheWritesWouldNot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(dl string) string
	}{
		{"absolute", func(dl string) string { return filepath.Join(dl, "real") }},
		{"climbing", func(dl string) string { return filepath.Join("..", filepath.Base(dl), "real") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, _ := buildInfo(t, 6, "top", 16<<10, []fileSpec{
				{path: []string{"top", "empty"}, length: 0},
				{path: []string{"top", "f"}, length: 10},
			})
			dl := filepath.Join(t.TempDir(), "dl")
			if err := os.MkdirAll(filepath.Join(dl, "real"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.target(dl), filepath.Join(dl, "top")); err != nil {
				t.Fatal(err)
			}
			if s, err := Open(dl, info); !errors.Is(err, metadata.ErrUnsafePath) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("Open: %v, want ErrUnsafePath", err)
			}
			if des, err := os.ReadDir(filepath.Join(dl, "real")); err != nil || len(des) != 0 {
				t.Fatalf("created %v (%v)", des, err)
			}
		})
	}
}

// A .node swapped for a symlink to another directory is neither written
// through (SaveResume fails, nothing appears there) nor read: a record
// planted there does not make the torrent claim the files.
func TestResumeThroughSwappedNodeDir(t *testing.T) {
	info, content := singleFile(t)
	dir, outside := t.TempDir(), t.TempDir()
	s := mustOpen(t, dir, info)
	if _, _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	writePieces(t, s, info, content, allPieces(info), 1)
	for p := range info.NumPieces() {
		s.MarkComplete(p)
	}
	if err := s.SaveResume(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The record moves out, and .node becomes a link to it.
	node := filepath.Join(dir, resumeDirName)
	if err := os.Rename(node, filepath.Join(outside, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "moved"), node); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, info)
	defer s.Close()
	if n, fast, err := s.Recover(); fast || n != info.NumPieces() {
		t.Fatalf("Recover: %d pieces, fast path %v, %v; want every piece hashed again", n, fast, err)
	}
	before, err := os.ReadDir(filepath.Join(outside, "moved"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveResume(); !errors.Is(err, metadata.ErrUnsafePath) {
		t.Fatalf("SaveResume through the link: %v, want ErrUnsafePath", err)
	}
	after, err := os.ReadDir(filepath.Join(outside, "moved"))
	if err != nil || len(after) != len(before) {
		t.Fatalf("the directory outside went from %d to %d entries (%v)", len(before), len(after), err)
	}
}

// victimBeside makes a download directory dir with top/sub in it, and
// outside it a directory holding someone's file f (victim), which a
// test's writes must leave alone.
func victimBeside(t *testing.T) (dir, outside, sub, victim string) {
	t.Helper()
	dir, outside = t.TempDir(), t.TempDir()
	sub = filepath.Join(dir, "top", "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	victim = filepath.Join(outside, "f")
	if err := os.WriteFile(victim, []byte("someone's long precious file"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, outside, sub, victim
}

// Open and the writes agree because Open asks the same os.Root: links
// that stay inside, however they get there, are followed by both; a walk
// that climbs out, even through a link to "." first, is refused by both.
func TestOpenAndWritesAgreeOnLinks(t *testing.T) {
	if errRootEscapes() == nil {
		t.Fatal("os.Root's escape error was not learnt: refusals would go unrecognised")
	}
	t.Run("inside through two links", func(t *testing.T) {
		info, content := buildInfo(t, 8, "data", 16<<10, []fileSpec{{path: []string{"data", "f"}, length: 10}})
		dl := t.TempDir()
		for _, d := range []string{"store/v1/data", "store/shared"} {
			if err := os.MkdirAll(filepath.Join(dl, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dl, "store", "shared", "f"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("store/v1/data", filepath.Join(dl, "data")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../shared/f", filepath.Join(dl, "store", "v1", "data", "f")); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, dl, info)
		defer s.Close()
		if err := s.WriteBlock(0, 0, content); err != nil {
			t.Fatalf("WriteBlock: %v", err)
		}
		if got, err := os.ReadFile(filepath.Join(dl, "store", "shared", "f")); err != nil || string(got) != string(content) {
			t.Fatalf("store/shared/f: %q, %v", got, err)
		}
	})
	t.Run("out through a link to dot", func(t *testing.T) {
		info, _ := buildInfo(t, 9, "a", 16<<10, []fileSpec{{path: []string{"a", "b", "f"}, length: 10}})
		dl := filepath.Join(t.TempDir(), "dl")
		if err := os.MkdirAll(filepath.Join(dl, "c"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(".", filepath.Join(dl, "a")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "dl", "c"), filepath.Join(dl, "b")); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(dl, info); !errors.Is(err, metadata.ErrUnsafePath) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("Open: %v, want ErrUnsafePath", err)
		}
	})
}

// A download directory that does not exist yet, nor its parent, is
// created on the first write, as the user asked for it; and so is it for
// the resume record.
func TestMissingDownloadDirCreated(t *testing.T) {
	info, content := buildInfo(t, 10, "top", 16<<10, []fileSpec{
		{path: []string{"top", "empty"}, length: 0},
		{path: []string{"top", "sub", "f"}, length: 10},
	})
	dir := filepath.Join(t.TempDir(), "not", "yet")
	s := mustOpen(t, dir, info)
	defer s.Close()
	if _, _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBlock(0, 0, content); err != nil {
		t.Fatalf("WriteBlock: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "top", "sub", "f")); err != nil || string(got) != string(content) {
		t.Fatalf("top/sub/f: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "top", "empty")); err != nil {
		t.Fatalf("the empty file: %v", err)
	}
	s.MarkComplete(0)
	if err := s.SaveResume(); err != nil {
		t.Fatalf("SaveResume: %v", err)
	}
	other := mustOpen(t, filepath.Join(t.TempDir(), "also", "missing"), info)
	defer other.Close()
	if err := other.SaveResume(); err != nil {
		t.Fatalf("SaveResume before any write: %v", err)
	}
}

// Open deletes the temporary files a crash left beside this torrent's
// resume record, and nothing else in .node.
func TestOpenRemovesResumeTemps(t *testing.T) {
	info, _ := singleFile(t)
	dir := t.TempDir()
	resume := (&Storage{dir: dir, info: info}).resumePath()
	node := filepath.Dir(resume)
	if err := os.MkdirAll(node, 0o755); err != nil {
		t.Fatal(err)
	}
	left := "." + filepath.Base(resume) + ".tmp12345"
	kept := []string{".0000000000000000000000000000000000000000.resume.tmp1", "notes"}
	for _, n := range append([]string{left}, kept...) {
		if err := os.WriteFile(filepath.Join(node, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := mustOpen(t, dir, info)
	defer s.Close()
	if _, err := os.Stat(filepath.Join(node, left)); !os.IsNotExist(err) {
		t.Fatalf("the leftover temporary file stays: %v", err)
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(node, n)); err != nil {
			t.Fatalf("%s was removed: %v", n, err)
		}
	}
}
