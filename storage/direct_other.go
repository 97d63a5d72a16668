//go:build !linux

package storage

// openDirect: direct I/O is only used on Linux.
func openDirect(string) directFile { return nil }
