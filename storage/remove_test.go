package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	record, err := os.ReadFile(s.resumePath())
	if err != nil {
		t.Fatal(err)
	}
	err = RemoveFiles(dir, info)
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
	// Still the torrent's: its record is back.
	if err := os.MkdirAll(filepath.Dir(s.resumePath()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.resumePath(), record, 0o644); err != nil {
		t.Fatal(err)
	}
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

// The review's case: a torrent made of precious.txt is added where a file
// of that name already holds someone else's data. Recover refuses it
// (ErrForeignData), no resume record is written, and RemoveFiles then
// deletes nothing of it.
func TestRemoveFilesLeavesForeignFile(t *testing.T) {
	src, dl := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "precious.txt"), []byte("what the torrent says\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metadata.Create(filepath.Join(src, "precious.txt"), metadata.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info := mi.Info
	precious := filepath.Join(dl, "precious.txt")
	thesis := []byte("the user's own thesis\n")
	if err := os.WriteFile(precious, thesis, 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dl, info)
	if _, _, err := s.Recover(); !errors.Is(err, ErrForeignData) {
		t.Fatalf("Recover: %v, want ErrForeignData", err)
	}
	if err := s.SaveResume(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = RemoveFiles(dl, info)
	if !errors.Is(err, ErrNotClaimed) || !strings.Contains(err.Error(), precious) {
		t.Fatalf("RemoveFiles: %v, want %s named as not the torrent's", err, precious)
	}
	if got, err := os.ReadFile(precious); err != nil || !bytes.Equal(got, thesis) {
		t.Fatalf("precious.txt: %q, %v", got, err)
	}
}

// What the torrent claimed is deleted: a file it adopted because it held
// the torrent's verified data (once Recover's record is saved, as a
// finished torrent saves it), and one SetOverwrite handed over. The same
// adopted file with no record saved yet (removed before the torrent ever
// saved) stays.
func TestRemoveFilesClaimed(t *testing.T) {
	info, content := singleFile(t)
	for _, tc := range []struct {
		name      string
		data      []byte
		overwrite bool
		save      bool
		deleted   bool
	}{
		{"adopted", content, false, true, true},
		{"adopted, no record yet", content, false, false, false},
		{"overwrite", randomBytes(len(content), 9), true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, _ := placeFile(t, dir, info, 0, tc.data)
			s := mustOpen(t, dir, info)
			s.SetOverwrite(tc.overwrite)
			if _, _, err := s.Recover(); err != nil {
				t.Fatalf("Recover: %v", err)
			}
			if tc.save {
				if err := s.SaveResume(); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			err := RemoveFiles(dir, info)
			_, serr := os.Lstat(path)
			if tc.deleted {
				if err != nil || !os.IsNotExist(serr) {
					t.Fatalf("RemoveFiles: %v; the file: %v", err, serr)
				}
				if _, err := os.Lstat(filepath.Join(dir, resumeDirName)); !os.IsNotExist(err) {
					t.Fatalf("the record's directory stays: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotClaimed) || serr != nil {
				t.Fatalf("RemoveFiles: %v; the file: %v", err, serr)
			}
		})
	}
}

// A resume record that is not a whole one of this torrent claims nothing.
func TestRemoveFilesBadRecord(t *testing.T) {
	info, content := singleFile(t)
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	writePieces(t, s, info, content, allPieces(info), 1)
	if err := s.SaveResume(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rp := s.resumePath()
	b, err := os.ReadFile(rp)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(rp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RemoveFiles(dir, info); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("RemoveFiles: %v, want ErrNotClaimed", err)
	}
	checkFiles(t, dir, info, content)
	if _, err := os.Stat(rp); err != nil {
		t.Fatalf("the record was removed: %v", err)
	}
}

// RemoveFiles names at most maxLeftReported of the paths it leaves and
// counts the rest.
func TestRemoveFilesLeftBound(t *testing.T) {
	const n = maxLeftReported + 5
	var specs []fileSpec
	for i := range n {
		specs = append(specs, fileSpec{path: []string{"many", fmt.Sprintf("f%02d", i)}, length: 100})
	}
	info, _ := buildInfo(t, 3, "many", 16<<10, specs)
	dir := t.TempDir()
	for i := range info.Files {
		placeFile(t, dir, info, i, []byte("someone's"))
	}
	err := RemoveFiles(dir, info)
	if err == nil {
		t.Fatal("nothing reported")
	}
	if got := strings.Count(err.Error(), ErrNotClaimed.Error()); got != maxLeftReported {
		t.Fatalf("%d paths named, want %d: %v", got, maxLeftReported, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("and %d more left", n-maxLeftReported)) {
		t.Fatalf("the rest not counted: %v", err)
	}
}

// A directory on a torrent's path flipped to a symlink out of the download
// directory and back, while RemoveFiles runs over and over, never makes it
// delete the file the link leads to. RemoveFiles reaches each directory by
// a handle and checks it is the one it looked at, so the flip can only
// make it leave the torrent's file, never follow the link.
func TestRemoveFilesSymlinkRace(t *testing.T) {
	const (
		maxIters = 3000
		maxTime  = 3 * time.Second
	)
	info, _ := buildInfo(t, 4, "top", 16<<10, []fileSpec{{path: []string{"top", "sub", "f"}, length: 10}})
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "f")
	if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir, info)
	if err := s.WriteBlock(0, 0, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveResume(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rp := s.resumePath()
	record, err := os.ReadFile(rp)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "top", "sub")
	aside := filepath.Join(dir, "top", "aside")

	// The flipper: sub moves aside, a link sub -> outside appears, goes,
	// sub comes back, over and over while RemoveFiles runs.
	var (
		running atomic.Bool
		start   = make(chan bool)
		idle    = make(chan struct{})
	)
	go func() {
		for range start {
			for step := 0; running.Load(); step++ {
				switch step % 4 {
				case 0:
					os.Rename(sub, aside)
				case 1:
					os.Symlink(outside, sub)
				case 2:
					os.Remove(sub)
				case 3:
					os.Rename(aside, sub)
				}
			}
			idle <- struct{}{}
		}
	}()
	defer close(start)
	// reset puts the real directory, the file and the record back while
	// the flipper is idle, without writing through a link.
	reset := func() {
		if fi, err := os.Lstat(sub); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			os.Remove(sub)
		}
		os.Rename(aside, sub)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(sub); err != nil || !fi.IsDir() {
			t.Fatalf("sub is not a directory: %v", err)
		}
		if err := os.WriteFile(filepath.Join(sub, "f"), make([]byte, 10), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(rp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rp, record, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(maxTime)
	iters, removed := 0, 0
	for ; iters < maxIters && time.Now().Before(deadline); iters++ {
		reset()
		running.Store(true)
		start <- true
		RemoveFiles(dir, info) // leaving what it cannot reach is its right
		running.Store(false)
		<-idle
		if got, err := os.ReadFile(victim); err != nil || string(got) != "victim" {
			t.Fatalf("iteration %d: the file outside was deleted or changed: %q, %v", iters, got, err)
		}
		_, errA := os.Lstat(filepath.Join(aside, "f"))
		_, errS := os.Lstat(filepath.Join(sub, "f"))
		if os.IsNotExist(errA) && os.IsNotExist(errS) {
			removed++
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("the outside directory: %v", err)
	}
	t.Logf("%d runs against the flipper, %d deleted the torrent's file", iters, removed)
}
