package storage

import (
	"os"
	"syscall"
)

// openDirect opens path (already resolved, see openInside) for direct
// writes, or returns nil if the file system will not do them (tmpfs
// before Linux 6.6, some FUSE file systems, ...) or path is no longer the
// file want describes: it is opened again by name, and the name may lead
// elsewhere since (a directory swapped for a symlink).
func openDirect(path string, want os.FileInfo) directFile {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	if want != nil {
		if fi, err := f.Stat(); err != nil || !os.SameFile(fi, want) {
			f.Close()
			return nil
		}
	}
	return f
}
