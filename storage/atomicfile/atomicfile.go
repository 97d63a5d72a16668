// Package atomicfile replaces small files whole, so that a crash or a
// failed write leaves the old file or the new one, never a torn one: a
// temporary file beside the target, written, synced, renamed (or linked)
// over it, and the directory synced so that the rename itself lasts. The
// resume files of storage, the DHT's saved state, node daemon's state,
// API token and address, and node's --trace pictures are all written
// through it (the resume files by WriteIn, within the download
// directory's os.Root), and read back by ReadFile, which bounds what it
// reads. It
// imports nothing of ours, so dht, below storage, uses it too.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// WriteFile replaces path with data, with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what write writes, with mode perm. If write
// fails, path is left as it was.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := Temp(dir, filepath.Base(path), perm, write)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}

// Temp writes a new file in dir, named after name but hidden and unique,
// with mode perm and what write writes, synced, and returns its path; the
// caller renames or links it into place and removes what is left. On an
// error nothing is left behind.
func Temp(dir, name string, perm os.FileMode, write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return "", err
	}
	// CreateTemp makes it 0600; the umask cannot widen a chmod.
	err = f.Chmod(perm)
	if err == nil {
		bw := bufio.NewWriter(f)
		if err = write(bw); err == nil {
			err = bw.Flush()
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// WriteIn replaces name, relative to root, with data, with mode perm, by
// the same steps as WriteFile, each through root: the temporary file,
// the rename and the directory's sync never leave it, whatever symlinks
// a name on the way has become.
func WriteIn(root *os.Root, name string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(name)
	var f *os.File
	var tmp string
	for try := 0; ; try++ {
		tmp = filepath.Join(dir, "."+base+".tmp"+strconv.FormatUint(uint64(rand.Uint32()), 10))
		var err error
		f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || try >= 100 {
			return err
		}
	}
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
		return err
	}
	if dir == "" {
		dir = "."
	}
	return syncDir(root.Open(dir))
}

// SyncDir makes a rename or link in dir durable. A file system that cannot
// sync a directory (EINVAL) is no error: there is nothing more to do.
func SyncDir(dir string) error { return syncDir(os.Open(dir)) }

// syncDir syncs and closes the directory d just opened (or returns the
// error that opening it gave).
func syncDir(d *os.File, err error) error {
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// ReadFile reads path, which must hold at most max bytes: a larger file is
// an error, read no further than max+1 bytes. Errors opening it are the os
// package's, so errors.Is(err, fs.ErrNotExist) tells a missing file.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: too large: over %d bytes", path, max)
	}
	return b, nil
}
