package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"node/metadata"
)

// halfDownloaded writes and marks the even pieces, saves the resume file and
// closes, like a client interrupted halfway.
func halfDownloaded(t *testing.T) (dir string, info *metadata.Info, content []byte, even []int) {
	t.Helper()
	info, content = multiFile(t)
	dir = t.TempDir()
	for p := 0; p < info.NumPieces(); p += 2 {
		even = append(even, p)
	}
	s := mustOpen(t, dir, info)
	writePieces(t, s, info, content, even, 5)
	for _, p := range even {
		s.MarkComplete(p)
	}
	if err := s.SaveResume(); err != nil {
		t.Fatalf("SaveResume: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, info, content, even
}

// trulyVerifying hashes every piece through a fresh Storage: the ground truth
// that Recover must never exceed.
func trulyVerifying(t *testing.T, dir string, info *metadata.Info) []int {
	t.Helper()
	s := mustOpen(t, dir, info)
	defer s.Close()
	var ps []int
	for p := range info.NumPieces() {
		ok, err := s.VerifyPiece(p)
		if err != nil {
			t.Fatalf("VerifyPiece(%d): %v", p, err)
		}
		if ok {
			ps = append(ps, p)
		}
	}
	return ps
}

func recoverFresh(t *testing.T, dir string, info *metadata.Info) (*Storage, int, bool) {
	t.Helper()
	s := mustOpen(t, dir, info)
	t.Cleanup(func() { s.Close() })
	n, fast, err := s.Recover()
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if n != s.NumComplete() {
		t.Fatalf("Recover returned %d, NumComplete %d", n, s.NumComplete())
	}
	return s, n, fast
}

func filePath(dir string, f metadata.File) string {
	return filepath.Join(append([]string{dir}, f.Path...)...)
}

func TestResumeFastPath(t *testing.T) {
	dir, info, _, even := halfDownloaded(t)
	s, n, fast := recoverFresh(t, dir, info)
	if !fast || n != len(even) || !slices.Equal(completeSet(s), even) {
		t.Fatalf("Recover = %d, fast %v, complete %v; want fast with %v", n, fast, completeSet(s), even)
	}
	var want int64
	for _, p := range even {
		want += info.PieceSize(p)
	}
	if s.BytesComplete() != want {
		t.Errorf("BytesComplete = %d, want %d", s.BytesComplete(), want)
	}
	// Recovering again from the same state is still fast: Open and
	// Recover must not touch the files.
	s.Close()
	if _, n2, fast2 := recoverFresh(t, dir, info); !fast2 || n2 != n {
		t.Errorf("second Recover = %d, fast %v", n2, fast2)
	}
}

func TestResumeAfterModification(t *testing.T) {
	cBin := 3 // index of sub/c.bin in multiFile
	cases := map[string]func(t *testing.T, dir string, info *metadata.Info){
		"append byte": func(t *testing.T, dir string, info *metadata.Info) {
			f, err := os.OpenFile(filePath(dir, info.Files[cBin]), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{1})
			f.Close()
		},
		"touch mtime": func(t *testing.T, dir string, info *metadata.Info) {
			future := time.Now().Add(time.Hour)
			if err := os.Chtimes(filePath(dir, info.Files[cBin]), future, future); err != nil {
				t.Fatal(err)
			}
		},
		"corrupt byte": func(t *testing.T, dir string, info *metadata.Info) {
			p := filePath(dir, info.Files[0])
			fi, _ := os.Stat(p)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, 100); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0xff
			if _, err := f.WriteAt(b, 100); err != nil {
				t.Fatal(err)
			}
			f.Close()
			// Coarse timestamps might not move within one tick; make
			// the change visible the way any later write would.
			mt := fi.ModTime().Add(time.Second)
			os.Chtimes(p, mt, mt)
		},
		"delete file": func(t *testing.T, dir string, info *metadata.Info) {
			if err := os.Remove(filePath(dir, info.Files[cBin])); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, modify := range cases {
		t.Run(name, func(t *testing.T) {
			dir, info, _, _ := halfDownloaded(t)
			modify(t, dir, info)
			want := trulyVerifying(t, dir, info)
			if len(want) == 0 || len(want) == info.NumPieces() {
				t.Fatalf("ground truth %v makes the test vacuous", want)
			}
			s, n, fast := recoverFresh(t, dir, info)
			if fast {
				t.Fatal("used fast path after modification")
			}
			if got := completeSet(s); n != len(want) || !slices.Equal(got, want) {
				t.Fatalf("Recover = %d %v, want %v", n, got, want)
			}
			if name == "delete file" {
				c := info.Files[cBin]
				for p := range info.NumPieces() {
					ps, pe := int64(p)*info.PieceLength, int64(p)*info.PieceLength+info.PieceSize(p)
					if ps < c.Offset+c.Length && c.Offset < pe && s.Complete(p) {
						t.Errorf("piece %d of deleted file is complete", p)
					}
				}
			}
		})
	}
}

func readResume(t *testing.T, dir string, info *metadata.Info) (string, []byte, resumeData) {
	t.Helper()
	path := filepath.Join(dir, ".node", string(hexOf(info.InfoHash))+".resume")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rd resumeData
	if err := bencode.Unmarshal(data, &rd); err != nil {
		t.Fatal(err)
	}
	return path, data, rd
}

func hexOf(h metadata.InfoHash) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(h))
	for _, b := range h {
		out = append(out, digits[b>>4], digits[b&15])
	}
	return out
}

func TestResumeCorrupt(t *testing.T) {
	reencode := func(t *testing.T, rd resumeData, fixChecksum bool) []byte {
		if fixChecksum {
			rd.Checksum = rd.checksum()
		}
		b, err := bencode.Marshal(rd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	allOnes := func(rd *resumeData) {
		for i := range rd.Bitfield {
			rd.Bitfield[i] = 0xff
		}
		if n := rd.NumPieces % 8; n != 0 {
			rd.Bitfield[len(rd.Bitfield)-1] = 0xff << (8 - n)
		}
	}
	cases := map[string]func(t *testing.T, dir string, info *metadata.Info, data []byte, rd resumeData) []byte{
		"garbage": func(t *testing.T, _ string, _ *metadata.Info, data []byte, _ resumeData) []byte {
			return bytes.Repeat([]byte("garbage!"), 50)
		},
		"empty": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, _ resumeData) []byte {
			return nil
		},
		"truncated": func(t *testing.T, _ string, _ *metadata.Info, data []byte, _ resumeData) []byte {
			return data[:len(data)/2]
		},
		"trailing junk": func(t *testing.T, _ string, _ *metadata.Info, data []byte, _ resumeData) []byte {
			return append(data, 'x')
		},
		"huge": func(t *testing.T, _ string, _ *metadata.Info, data []byte, _ resumeData) []byte {
			return append(data, make([]byte, 1<<20)...)
		},
		"wrong info-hash": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, rd resumeData) []byte {
			rd.InfoHash = bytes.Repeat([]byte{1}, 20)
			allOnes(&rd)
			return reencode(t, rd, true)
		},
		"wrong piece length": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, rd resumeData) []byte {
			rd.PieceLength *= 2
			return reencode(t, rd, true)
		},
		"wrong piece count": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, rd resumeData) []byte {
			rd.NumPieces++
			return reencode(t, rd, true)
		},
		"flipped bit, stale checksum": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, rd resumeData) []byte {
			rd.Bitfield[0] |= 0x40 // piece 1, never written
			return reencode(t, rd, false)
		},
		"spare bits": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, rd resumeData) []byte {
			rd.Bitfield[len(rd.Bitfield)-1] |= 1
			return reencode(t, rd, true)
		},
		"short bitfield": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, rd resumeData) []byte {
			rd.Bitfield = rd.Bitfield[:len(rd.Bitfield)-1]
			return reencode(t, rd, true)
		},
		"file list mismatch": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, rd resumeData) []byte {
			rd.Files = rd.Files[1:]
			return reencode(t, rd, true)
		},
		"wrong mtime": func(t *testing.T, _ string, _ *metadata.Info, _ []byte, rd resumeData) []byte {
			rd.Files[0].MTime++
			allOnes(&rd)
			return reencode(t, rd, true)
		},
		// A well-formed, checksummed resume file that matches the disk
		// exactly but claims every piece while the files are absent.
		"all claimed, files absent": func(t *testing.T, dir string, info *metadata.Info, _ []byte, rd resumeData) []byte {
			for i, f := range info.Files {
				if f.Length > 0 && !f.Padding {
					if err := os.Remove(filePath(dir, f)); err != nil && !os.IsNotExist(err) {
						t.Fatal(err)
					}
					rd.Files[i] = resumeFile{Size: -1}
				}
			}
			allOnes(&rd)
			return reencode(t, rd, true)
		},
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			dir, info, _, _ := halfDownloaded(t)
			path, data, rd := readResume(t, dir, info)
			if err := os.WriteFile(path, corrupt(t, dir, info, data, rd), 0o644); err != nil {
				t.Fatal(err)
			}
			want := trulyVerifying(t, dir, info)
			if len(want) == 0 && name != "all claimed, files absent" {
				t.Fatal("nothing verifies: test is vacuous")
			}
			s, n, fast := recoverFresh(t, dir, info)
			if fast {
				t.Fatal("trusted a corrupt resume file")
			}
			if got := completeSet(s); n != len(want) || !slices.Equal(got, want) {
				t.Fatalf("Recover = %d %v, want %v", n, got, want)
			}
		})
	}
}

func TestRecoverNoResume(t *testing.T) {
	dir, info, _, even := halfDownloaded(t)
	if err := os.RemoveAll(filepath.Join(dir, ".node")); err != nil {
		t.Fatal(err)
	}
	s, n, fast := recoverFresh(t, dir, info)
	if fast || n != len(even) || !slices.Equal(completeSet(s), even) {
		t.Fatalf("Recover = %d fast %v %v, want slow %v", n, fast, completeSet(s), even)
	}
	// Nothing at all on disk: nothing complete, no error.
	s2, n2, fast2 := recoverFresh(t, t.TempDir(), info)
	if fast2 || n2 != 0 || s2.NumComplete() != 0 {
		t.Fatalf("empty dir Recover = %d fast %v", n2, fast2)
	}
}

func TestSaveResumeAtomic(t *testing.T) {
	info, content := multiFile(t)
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	defer s.Close()
	for round, ps := range [][]int{{}, {0, 3}, {0, 1, 3, 7}} {
		writePieces(t, s, info, content, ps, uint64(round))
		for _, p := range ps {
			s.MarkComplete(p)
		}
		if err := s.SaveResume(); err != nil {
			t.Fatalf("SaveResume: %v", err)
		}
		entries, err := os.ReadDir(filepath.Join(dir, ".node"))
		if err != nil {
			t.Fatal(err)
		}
		want := string(hexOf(info.InfoHash)) + ".resume"
		if len(entries) != 1 || entries[0].Name() != want {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("round %d: .node holds %v, want only %s", round, names, want)
		}
		_, _, rd := readResume(t, dir, info)
		if !bytes.Equal(rd.Bitfield, s.Have()) || rd.NumPieces != int64(info.NumPieces()) ||
			rd.PieceLength != info.PieceLength || !bytes.Equal(rd.InfoHash, info.InfoHash[:]) ||
			len(rd.Files) != len(info.Files) || !bytes.Equal(rd.Checksum, rd.checksum()) {
			t.Fatalf("round %d: resume read back differs: %+v", round, rd)
		}
		for i, f := range info.Files {
			size, mtime, _ := s.fileState(filePath(dir, f))
			if f.Padding {
				size, mtime = -1, 0
			}
			if rd.Files[i] != (resumeFile{Size: size, MTime: mtime}) {
				t.Errorf("round %d file %d: recorded %+v, on disk %d %d", round, i, rd.Files[i], size, mtime)
			}
		}
		bf, err := s.loadResume()
		if err != nil || !bytes.Equal(bf, s.Have()) {
			t.Fatalf("round %d: loadResume = %v, %v", round, bf, err)
		}
	}
}
