package storage

import (
	"os"
	"syscall"
)

// openDirect opens path (already resolved, see openInside) for direct writes, or returns nil if the file
// system will not do them (tmpfs before Linux 6.6, some FUSE file
// systems, ...).
func openDirect(path string) directFile {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	return f
}
