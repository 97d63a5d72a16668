//go:build !linux

package storage

import "os"

// openDirect: direct I/O is only used on Linux.
func openDirect(func(int) (*os.File, error), os.FileInfo) directFile { return nil }
