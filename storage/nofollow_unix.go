//go:build unix

package storage

import "syscall"

// oNoFollow makes opening a symlink fail instead of following it.
const oNoFollow = syscall.O_NOFOLLOW

// oNonBlock makes opening a FIFO return at once instead of waiting for
// the other end.
const oNonBlock = syscall.O_NONBLOCK
