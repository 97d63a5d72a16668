//go:build unix

package testutil

import (
	"syscall"
	"testing"
)

// RaiseNoFile lifts the soft open-file limit to at least n if the hard
// limit allows it: a flood test binds a socket per source address.
func RaiseNoFile(t testing.TB, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= n {
		return
	}
	old := lim.Cur
	lim.Cur = min(n, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Logf("raising RLIMIT_NOFILE from %d: %v", old, err)
	}
}
