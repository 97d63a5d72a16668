package storage

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"node/metadata"
)

func testLayout(t *testing.T, info *metadata.Info, content []byte) {
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	defer s.Close()

	// Empty files exist right after Open; nothing else has been written.
	for _, f := range info.Files {
		if f.Length == 0 && !f.Padding {
			p := filepath.Join(append([]string{dir}, f.Path...)...)
			if fi, err := os.Stat(p); err != nil || fi.Size() != 0 {
				t.Fatalf("empty file %s after Open: %v", p, err)
			}
		}
	}
	for p := range info.NumPieces() {
		if ok, err := s.VerifyPiece(p); ok || err != nil {
			t.Fatalf("VerifyPiece(%d) before writing = %v, %v; want false, nil", p, ok, err)
		}
	}

	writePieces(t, s, info, content, allPieces(info), 42)
	checkFiles(t, dir, info, content)
	for p := range info.NumPieces() {
		ok, err := s.VerifyPiece(p)
		if !ok || err != nil {
			t.Errorf("VerifyPiece(%d) = %v, %v", p, ok, err)
		}
	}

	// Random reads, many of which cross file boundaries.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		off := rng.Int64N(info.Length)
		n := rng.Int64N(min(info.Length-off, 3*multiPieceLen)) + 1
		buf := make([]byte, n)
		m, err := s.ReadAt(buf, off)
		if err != nil || int64(m) != n || !bytes.Equal(buf, content[off:off+n]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v; content equal: %v", n, off, m, err, bytes.Equal(buf, content[off:off+n]))
		}
	}
	// Every file boundary explicitly, and ReadBlock for every block.
	for _, f := range info.Files {
		lo, hi := max(f.Offset-10, 0), min(f.Offset+f.Length+10, info.Length)
		buf := make([]byte, hi-lo)
		if _, err := s.ReadAt(buf, lo); err != nil || !bytes.Equal(buf, content[lo:hi]) {
			t.Errorf("ReadAt around %v: %v", f.Path, err)
		}
		if f.Padding {
			z := bytes.Repeat([]byte{0xff}, int(f.Length))
			if _, err := s.ReadAt(z, f.Offset); err != nil || !allZero(z) {
				t.Errorf("padding %v does not read as zeros: %v", f.Path, err)
			}
		}
	}
	for p := range info.NumPieces() {
		for b := int64(0); b < info.PieceSize(p); b += blockSize {
			n := min(blockSize, info.PieceSize(p)-b)
			buf := make([]byte, n)
			off := int64(p)*info.PieceLength + b
			if err := s.ReadBlock(p, b, buf); err != nil || !bytes.Equal(buf, content[off:off+n]) {
				t.Fatalf("ReadBlock(%d, %d): %v", p, b, err)
			}
		}
	}
	// Reads past the end follow io.ReaderAt.
	buf := make([]byte, 10)
	if n, err := s.ReadAt(buf, info.Length-4); n != 4 || err != io.EOF || !bytes.Equal(buf[:4], content[info.Length-4:]) {
		t.Errorf("ReadAt at end = %d, %v", n, err)
	}
	if n, err := s.ReadAt(buf, info.Length); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past end = %d, %v", n, err)
	}
}

func TestLayoutMultiFile(t *testing.T) {
	info, content := multiFile(t)
	testLayout(t, info, content)
}

func TestLayoutSingleFile(t *testing.T) {
	info, content := singleFile(t)
	testLayout(t, info, content)
}

func TestPaddingWrites(t *testing.T) {
	info, content := multiFile(t)
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	defer s.Close()
	pad := info.Files[2]
	// Zeros into padding are accepted and discarded.
	if n, err := s.WriteAt(make([]byte, pad.Length), pad.Offset); err != nil || n != int(pad.Length) {
		t.Fatalf("zero write into padding = %d, %v", n, err)
	}
	// Non-zero data spanning a real file and padding is refused as a whole.
	lo := pad.Offset - 100
	data := append([]byte(nil), content[lo:pad.Offset+10]...)
	data[len(data)-1] = 1
	if _, err := s.WriteAt(data, lo); !errors.Is(err, errPaddingData) {
		t.Fatalf("non-zero write into padding: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "multi", "a.bin")); !os.IsNotExist(err) {
		t.Errorf("refused write created a.bin: %v", err)
	}
	p := filepath.Join(append([]string{dir}, pad.Path...)...)
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("padding file exists: %v", err)
	}
}

func TestBounds(t *testing.T) {
	info, _ := multiFile(t)
	s := mustOpen(t, t.TempDir(), info)
	defer s.Close()
	last := info.NumPieces() - 1
	buf := make([]byte, blockSize)
	cases := []struct {
		name  string
		piece int
		begin int64
		n     int
	}{
		{"beyond piece", 0, info.PieceLength - blockSize + 1, blockSize},
		{"beyond last piece", last, info.PieceSize(last) - 1, 2},
		{"begin past piece", 0, info.PieceLength + 1, 0},
		{"negative begin", 0, -1, 1},
		{"negative piece", -1, 0, 1},
		{"piece out of range", info.NumPieces(), 0, 1},
		{"huge begin", 0, 1 << 62, 1},
	}
	for _, c := range cases {
		if err := s.WriteBlock(c.piece, c.begin, buf[:c.n]); err == nil {
			t.Errorf("WriteBlock %s: no error", c.name)
		}
		if err := s.ReadBlock(c.piece, c.begin, buf[:c.n]); err == nil {
			t.Errorf("ReadBlock %s: no error", c.name)
		}
	}
	if _, err := s.VerifyPiece(info.NumPieces()); err == nil {
		t.Error("VerifyPiece out of range: no error")
	}
	if _, err := s.VerifyPiece(-1); err == nil {
		t.Error("VerifyPiece(-1): no error")
	}
	if _, err := s.WriteAt(buf, info.Length-1); err == nil {
		t.Error("WriteAt past end: no error")
	}
	if _, err := s.WriteAt(buf, -1); err == nil {
		t.Error("WriteAt negative: no error")
	}
	if _, err := s.ReadAt(buf, -1); err == nil {
		t.Error("ReadAt negative: no error")
	}
	// Out-of-range completion calls are ignored, not panics.
	s.MarkComplete(-1)
	s.MarkComplete(info.NumPieces())
	if s.Complete(-1) || s.Complete(info.NumPieces()) || s.NumComplete() != 0 {
		t.Error("out-of-range completion changed state")
	}
	// Exactly the last block of the last piece is fine.
	if err := s.WriteBlock(last, info.PieceSize(last)-1, buf[:1]); err != nil {
		t.Errorf("last byte: %v", err)
	}
}

func TestInvalidLayout(t *testing.T) {
	mk := func(mod func(*metadata.Info)) *metadata.Info {
		info, _ := multiFile(t)
		mod(info)
		return info
	}
	cases := map[string]*metadata.Info{
		"zero piece length": mk(func(i *metadata.Info) { i.PieceLength = 0 }),
		"missing hash":      mk(func(i *metadata.Info) { i.Pieces = i.Pieces[1:] }),
		"bad offset":        mk(func(i *metadata.Info) { i.Files[3].Offset++ }),
		"negative length":   mk(func(i *metadata.Info) { i.Files[0].Length = -1 }),
		"length mismatch":   mk(func(i *metadata.Info) { i.Length++ }),
	}
	for name, info := range cases {
		dir := t.TempDir()
		if s, err := Open(dir, info); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
	if _, err := Open(t.TempDir(), nil); err == nil {
		t.Error("nil info: Open succeeded")
	}
}

func TestUnsafePaths(t *testing.T) {
	const name = "t"
	type tc struct {
		name  string
		path  []string
		setup func(t *testing.T, dir, outside string)
	}
	symlinkOut := func(t *testing.T, dir, outside string) {
		if err := os.Symlink(outside, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []tc{
		{name: "dotdot", path: []string{name, "..", "x"}},
		{name: "only dotdot", path: []string{".."}},
		{name: "absolute", path: []string{"/etc", "passwd"}},
		{name: "embedded dotdot", path: []string{name, "a/../../b"}},
		{name: "backslash", path: []string{name, `..\..\b`}},
		{name: "empty component", path: []string{name, ""}},
		{name: "dot", path: []string{name, "."}},
		{name: "NUL", path: []string{name, "a\x00b"}},
		{name: "no components", path: nil},
		{name: "reserved", path: []string{".node", "x.resume"}},
		{name: "symlink outside", path: []string{name, "f"}, setup: symlinkOut},
		{name: "nested symlink outside", path: []string{name, "sub", "f"}, setup: func(t *testing.T, dir, outside string) {
			if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../../"+filepath.Base(outside), filepath.Join(dir, name, "sub")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "file symlink outside", path: []string{name}, setup: func(t *testing.T, dir, outside string) {
			if err := os.Symlink(filepath.Join(outside, "target"), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "dangling symlink", path: []string{name, "f"}, setup: func(t *testing.T, dir, outside string) {
			if err := os.Symlink(filepath.Join(outside, "nope"), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "dl")
			outside := filepath.Join(root, "outside")
			for _, d := range []string{dir, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if c.setup != nil {
				c.setup(t, dir, outside)
			}
			// A safe empty file listed first: it must not be created
			// either, since all paths are checked before any creation.
			info, _ := buildInfo(t, 9, name, 1024, []fileSpec{
				{path: []string{"zzz-safe", "empty"}, length: 0},
				{path: c.path, length: 1000},
			})
			before := snapshot(t, root)
			s, err := Open(dir, info)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded")
			}
			if !errors.Is(err, metadata.ErrUnsafePath) {
				t.Fatalf("err = %v, want ErrUnsafePath", err)
			}
			if after := snapshot(t, root); after != before {
				t.Errorf("Open changed the disk:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func TestSymlinkInside(t *testing.T) {
	// A symlink that stays inside the download directory is allowed.
	info, content := singleFile(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The target exists: dangling links are refused, since where they
	// lead is only settled once something creates the target.
	if err := os.WriteFile(filepath.Join(dir, "real", "single.iso"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real/single.iso", filepath.Join(dir, "single.iso")); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir, info)
	defer s.Close()
	writePieces(t, s, info, content, allPieces(info), 1)
	got, err := os.ReadFile(filepath.Join(dir, "real", "single.iso"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("content through inside symlink: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	info, content := multiFile(t)
	dir := t.TempDir()
	s := mustOpen(t, dir, info)
	defer s.Close()
	var wg sync.WaitGroup
	for p := range info.NumPieces() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writePieces(t, s, info, content, []int{p}, uint64(p))
			if ok, err := s.VerifyPiece(p); !ok || err != nil {
				t.Errorf("VerifyPiece(%d) = %v, %v", p, ok, err)
				return
			}
			s.MarkComplete(p)
			_ = s.Have()
			_ = s.BytesComplete()
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1000)
			for range 20 {
				s.ReadAt(buf, int64(p)*info.PieceLength) // may fail before the write; only races matter
			}
		}()
	}
	wg.Wait()
	if s.NumComplete() != info.NumPieces() || s.BytesComplete() != info.Length {
		t.Fatalf("NumComplete %d BytesComplete %d", s.NumComplete(), s.BytesComplete())
	}
	checkFiles(t, dir, info, content)
	have := s.Have()
	for p := range info.NumPieces() {
		if !bitSet(have, p) {
			t.Errorf("Have misses %d", p)
		}
	}
	// Spare bits stay zero.
	if n := info.NumPieces(); n%8 != 0 && have[len(have)-1]&(0xff>>(n%8)) != 0 {
		t.Errorf("spare bits set: %08b", have[len(have)-1])
	}
}

func TestClosed(t *testing.T) {
	info, content := singleFile(t)
	s := mustOpen(t, t.TempDir(), info)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.WriteBlock(0, 0, content[:10]); err == nil {
		t.Error("WriteBlock after Close: no error")
	}
}
