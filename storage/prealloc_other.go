//go:build !linux

package storage

// preallocate: files stay sparse where there is no fallocate.
func preallocate(fileHandle, int64, int64) bool { return false }
