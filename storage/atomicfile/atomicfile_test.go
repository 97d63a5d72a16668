package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	for _, c := range []struct {
		data string
		perm os.FileMode
	}{{"first", 0o600}, {"second, longer", 0o644}, {"3", 0o600}} {
		if err := WriteFile(path, []byte(c.data), c.perm); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != c.data {
			t.Fatalf("read %q, %v; want %q", b, err, c.data)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != c.perm {
			t.Fatalf("mode %v, want %v", fi.Mode().Perm(), c.perm)
		}
	}
	onlyFile(t, dir, "state")
}

// A write that fails half-way leaves the old file and no temporary one.
func TestFailedWriteLeavesOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, 0o600, func(w io.Writer) error {
		if _, err := w.Write([]byte("half of the new")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write: %v, want %v", err, boom)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("after a failed write: %q", b)
	}
	onlyFile(t, dir, "state")
}

// Into a directory that is not there: an error, nothing written.
func TestWriteMissingDir(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "state"), []byte("x"), 0o600); err == nil {
		t.Fatal("wrote into a missing directory")
	}
}

// ReadFile takes a file of max bytes and refuses one of max+1.
func TestReadFileBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	const max = 100
	if err := WriteFile(path, make([]byte, max), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(path, max); err != nil || len(b) != max {
		t.Fatalf("%d bytes, %v; want %d", len(b), err, max)
	}
	if _, err := ReadFile(path, max-1); err == nil {
		t.Fatal("read a file over the bound")
	}
	if _, err := ReadFile(path+"-missing", max); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name() != name {
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		t.Fatalf("%s holds %q, want only %s", dir, names, name)
	}
}

// WriteIn replaces a file whole inside a root, leaving no temporary file,
// and refuses a directory on the way that has become a link out.
func TestWriteInReplacesWholeInsideRoot(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, data := range []string{"first", "second, longer", "3"} {
		if err := WriteIn(root, "sub/state", []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "sub", "state"))
		if err != nil || string(b) != data {
			t.Fatalf("read %q, %v; want %q", b, err, data)
		}
		if fi, _ := os.Stat(filepath.Join(dir, "sub", "state")); fi.Mode().Perm() != 0o640 {
			t.Fatalf("mode %v, want 0640", fi.Mode().Perm())
		}
	}
	onlyFile(t, filepath.Join(dir, "sub"), "state")
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := WriteIn(root, "sub/state", []byte("x"), 0o600); err == nil {
		t.Fatal("wrote through a link out of the root")
	}
	if des, _ := os.ReadDir(outside); len(des) != 0 {
		t.Fatalf("%d files appeared outside", len(des))
	}
}
