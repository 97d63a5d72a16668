package storage

import (
	"os"
	"syscall"
)

// openDirect opens, through open (with the download directory as its
// root), the file of a handle for direct writes, or returns nil if the
// file system will not do them (tmpfs before Linux 6.6, some FUSE file
// systems, ...) or what it opened is no longer the file want describes:
// it is opened again by name, and another file may have taken that name
// since.
func openDirect(open func(flag int) (*os.File, error), want os.FileInfo) directFile {
	// Non-blocking: opened by name again, it may be a FIFO now, and
	// opening one to write would wait for a reader (under Storage.mu).
	f, err := open(os.O_WRONLY | syscall.O_DIRECT | syscall.O_NONBLOCK)
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
