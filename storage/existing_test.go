package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"node/metadata"
)

// placeFile puts data at the torrent's path of file i, as a user's own file
// of the same name would be, with an old mtime so a rewrite would show.
func placeFile(t *testing.T, dir string, info *metadata.Info, i int, data []byte) (path string, mtime time.Time) {
	t.Helper()
	path = filePath(dir, info.Files[i])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime = time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return path, mtime
}

func untouched(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s changed: %d bytes (want %d), err %v", path, len(got), len(data), err)
	}
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(mtime) {
		t.Fatalf("%s: mtime %v, want %v", path, fi.ModTime(), mtime)
	}
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = seededChaCha8(seed, 1).Read(b)
	return b
}

// A file that was there before the torrent and holds something else is
// not the torrent's to overwrite: Recover says so, writes are refused, and
// the file keeps every byte and its mtime.
func TestForeignFileRefused(t *testing.T) {
	info, content := singleFile(t)
	cases := map[string][]byte{
		"other data":          randomBytes(3000, 1),
		"longer than torrent": randomBytes(int(info.Length)+5000, 2),
		// Right data but for one byte: the piece holding it fails.
		"one byte off": func() []byte {
			b := slices.Clone(content)
			b[100_000] ^= 1
			return b
		}(),
		// A prefix of the right data that ends inside a piece: that
		// piece cannot verify, so its bytes are other data as far as
		// anyone can tell. (libtorrent would keep it; we ask.)
		"prefix ending mid-piece": content[:multiPieceLen+100],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path, mtime := placeFile(t, dir, info, 0, data)
			s := mustOpen(t, dir, info)
			defer s.Close()
			if _, _, err := s.Recover(); !errors.Is(err, ErrForeignData) {
				t.Fatalf("Recover: %v, want ErrForeignData", err)
			}
			for p := range info.NumPieces() {
				off := int64(p) * info.PieceLength
				if err := s.WriteBlock(p, 0, content[off:off+min(blockSize, info.PieceSize(p))]); !errors.Is(err, ErrForeignData) {
					t.Fatalf("WriteBlock(%d): %v, want ErrForeignData", p, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			untouched(t, path, data, mtime)
			if _, err := os.Stat(filepath.Join(dir, resumeDirName)); !os.IsNotExist(err) {
				t.Errorf("a resume record was written: %v", err)
			}
		})
	}
}

// A non-empty file where the torrent has an empty one is not truncated at
// Open (it used to be).
func TestForeignFileAtEmptyPath(t *testing.T) {
	info, _ := multiFile(t)
	dir := t.TempDir()
	data := []byte("export PATH=$HOME/bin:$PATH\n")
	path, mtime := placeFile(t, dir, info, 1, data) // multi/sub/deep/empty
	s := mustOpen(t, dir, info)
	defer s.Close()
	if _, _, err := s.Recover(); !errors.Is(err, ErrForeignData) {
		t.Fatalf("Recover: %v, want ErrForeignData", err)
	}
	s.Close()
	untouched(t, path, data, mtime)
}

// Existing data that verifies is kept as it is, and with zeros (holes) for
// what is missing the file is taken as the torrent's: the rest downloads
// into it.
func TestForeignFileKept(t *testing.T) {
	info, content := singleFile(t)
	t.Run("complete", func(t *testing.T) {
		dir := t.TempDir()
		path, mtime := placeFile(t, dir, info, 0, content)
		s := mustOpen(t, dir, info)
		defer s.Close()
		n, _, err := s.Recover()
		if err != nil || n != info.NumPieces() {
			t.Fatalf("Recover = %d, %v; want all %d pieces", n, err, info.NumPieces())
		}
		s.Close()
		untouched(t, path, content, mtime)
	})
	for name, data := range map[string][]byte{
		"prefix on a piece boundary": content[:2*multiPieceLen],
		"holes": func() []byte {
			b := slices.Clone(content)
			clear(b[multiPieceLen : 3*multiPieceLen])
			return b
		}(),
		"zeros past the end": append(slices.Clone(content[:multiPieceLen]), make([]byte, info.Length)...),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			placeFile(t, dir, info, 0, data)
			s := mustOpen(t, dir, info)
			defer s.Close()
			if _, _, err := s.Recover(); err != nil {
				t.Fatalf("Recover: %v", err)
			}
			if !s.Complete(0) {
				t.Fatal("the verifying piece 0 was not kept")
			}
			var missing []int
			for p := range info.NumPieces() {
				if !s.Complete(p) {
					missing = append(missing, p)
				}
			}
			writePieces(t, s, info, content, missing, 3)
			s.Close()
			checkFiles(t, dir, info, content)
		})
	}
}

// SetOverwrite gives a file holding other data to the torrent; the pieces
// that verify in it are still kept.
func TestForeignFileOverwrite(t *testing.T) {
	info, content := singleFile(t)
	dir := t.TempDir()
	data := slices.Clone(content)
	data[len(data)-1] ^= 0xff // the last piece is wrong
	data = append(data, "trailing junk"...)
	placeFile(t, dir, info, 0, data)
	s := mustOpen(t, dir, info)
	defer s.Close()
	s.SetOverwrite(true)
	n, _, err := s.Recover()
	if err != nil || n != info.NumPieces()-1 {
		t.Fatalf("Recover = %d, %v; want %d pieces kept", n, err, info.NumPieces()-1)
	}
	writePieces(t, s, info, content, []int{info.NumPieces() - 1}, 4)
	s.Close()
	checkFiles(t, dir, info, content)
}

// The first write records the files as the torrent's before it creates
// any: a process killed before its first resume save still owns, on
// restart, the half-written files it made, however they look.
func TestOwnFilesAfterKill(t *testing.T) {
	info, content := multiFile(t)
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	writePieces(t, s, info, content, []int{0, 3, 5}, 6)
	// "Killed": no SaveResume, no Close. Then a write torn in the middle
	// of piece 7 leaves data that is not zeros and does not verify.
	torn := filePath(dir, info.Files[5])
	f, err := os.OpenFile(torn, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xaa}, 1000), 70_000); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s2 := mustOpen(t, dir, info)
	defer s2.Close()
	if _, _, err := s2.Recover(); err != nil {
		t.Fatalf("Recover after kill: %v", err)
	}
	if got := completeSet(s2); !slices.Equal(got, []int{0, 3, 5}) {
		t.Fatalf("complete after kill: %v", got)
	}
	var rest []int
	for p := range info.NumPieces() {
		if !s2.Complete(p) {
			rest = append(rest, p)
		}
	}
	writePieces(t, s2, info, content, rest, 7)
	s2.Close()
	checkFiles(t, dir, info, content)
	s.Close()
}

// A symlink that appears at a file's path after Open, pointing outside the
// download directory, is not written through.
func TestSymlinkAfterOpen(t *testing.T) {
	info, content := singleFile(t)
	root := t.TempDir()
	dir := filepath.Join(root, "dl")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir, info)
	defer s.Close()
	if _, _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "single.iso")); err != nil {
		t.Fatal(err)
	}
	err := s.WriteBlock(0, 0, content[:blockSize])
	if !errors.Is(err, metadata.ErrUnsafePath) {
		t.Fatalf("WriteBlock through a symlink out: %v, want ErrUnsafePath", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Fatalf("the symlink's target was written: %q", got)
	}
}

// A seed that serves a file it may not write (it holds the torrent plus
// someone's tail) saves no resume record, even with every piece verified:
// the record would make the file the torrent's on the next run, and a
// later failed piece's write would truncate the tail.
func TestNoResumeWhileForeign(t *testing.T) {
	info, content := singleFile(t)
	dir := t.TempDir()
	data := append(slices.Clone(content), "someone's tail"...)
	path, mtime := placeFile(t, dir, info, 0, data)
	for run := range 2 {
		s := mustOpen(t, dir, info)
		n, _, err := s.Recover()
		if !errors.Is(err, ErrForeignData) || n != info.NumPieces() {
			t.Fatalf("run %d: Recover = %d, %v; want all %d pieces and ErrForeignData", run, n, err, info.NumPieces())
		}
		if err := s.SaveResume(); err != nil {
			t.Fatalf("run %d: SaveResume: %v", run, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, resumeDirName)); !os.IsNotExist(err) {
			t.Fatalf("run %d: a resume record was written: %v", run, err)
		}
	}
	untouched(t, path, data, mtime)
}

// A refusal creates nothing: not the torrent's empty files, nor their
// directories, so that "nothing was written" is true.
func TestForeignRefusalCreatesNothing(t *testing.T) {
	info, _ := multiFile(t) // multi/sub/deep/empty is an empty file
	dir := t.TempDir()
	placeFile(t, dir, info, 0, randomBytes(3000, 9)) // multi/a.bin
	before := snapshot(t, dir)
	s := mustOpen(t, dir, info)
	defer s.Close()
	if _, _, err := s.Recover(); !errors.Is(err, ErrForeignData) {
		t.Fatalf("Recover: %v, want ErrForeignData", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("the download directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
