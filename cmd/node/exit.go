package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"node/metadata"
	"node/peer"
	"node/storage"
)

// Exit codes, documented in the README.
const (
	exitOK       = 0
	exitFailure  = 1  // anything not listed below
	exitBadInput = 2  // a magnet link or .torrent that does not parse
	exitUnsafe   = 3  // the torrent's file names would leave the download directory
	exitNoPeers  = 4  // no peers, or no metadata, before --timeout
	exitDisk     = 5  // reading or writing the files failed
	exitDiskFull = 6  // the disk is full: free space, then run the same command to resume
	exitExists   = 7  // a file at one of the torrent's paths holds other data: move it, or fetch --overwrite
	exitUsage    = 64 // bad arguments (sysexits' EX_USAGE)
	exitSignal   = 130
)

// usageError marks errors caused by the command line, so they exit with
// exitUsage rather than exitFailure.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitError ends a command with a specific code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// inputError is the exit for a magnet link or .torrent that cannot be
// used: refused for its file names, or not parseable.
func inputError(err error) error {
	if errors.Is(err, metadata.ErrUnsafePath) {
		return exitError{exitUnsafe, "refusing the torrent: " + err.Error() + "; nothing was written"}
	}
	return exitError{exitBadInput, err.Error()}
}

// exitFor maps a torrent's failure to its exit code.
func exitFor(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, metadata.ErrUnsafePath):
		return exitError{exitUnsafe, "refusing the torrent: " + err.Error() + "; nothing was written"}
	case errors.Is(err, storage.ErrForeignData):
		return exitError{exitExists, "refusing to overwrite: " + err.Error() +
			"; nothing was written: move it away, or pass --overwrite to replace it (data that verifies is kept)"}
	case errors.Is(err, peer.ErrBadMetadata):
		return exitError{exitBadInput, err.Error()}
	case errors.Is(err, syscall.ENOSPC):
		return exitError{exitDiskFull, "disk full: " + err.Error() + "; free some space and run the same command again to resume"}
	case isDiskError(err):
		return exitError{exitDisk, err.Error()}
	}
	return err
}

func isDiskError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES)
}
