package utp

/*
#include "utp.h"
*/
import "C"

import (
	"errors"

	"github.com/anacrolix/sync"
)

type Option = C.int

const (
	LogNormal   Option = C.UTP_LOG_NORMAL
	LogMtu      Option = C.UTP_LOG_MTU
	LogDebug    Option = C.UTP_LOG_DEBUG
	SendBuffer  Option = C.UTP_SNDBUF
	RecvBuffer  Option = C.UTP_RCVBUF
	TargetDelay Option = C.UTP_TARGET_DELAY

	TimedOut = C.UTP_ETIMEDOUT
)

var (
	mu                 libMutex
	libContextToSocket = map[*utpContext]*Socket{}
	// flushing are the sockets with datagrams queued under mu.
	flushing []*Socket
)

// libMutex is the lock over libutp. Releasing it sends the datagrams
// libutp emitted while it was held (see sendQueue), before another
// goroutine can call into libutp: so each call's datagrams leave in one
// batch, in the order libutp emitted them, and a goroutine that waits on
// a Conn's cond (which releases the lock) has sent what it wrote first.
// The sends are made holding the lock, as go-libutp made each before: a
// UDP send waits only for the kernel's send buffer, never for anything
// that needs the lock.
type libMutex struct{ sync.Mutex }

func (m *libMutex) Unlock() {
	for _, s := range flushing {
		s.flushQueued()
	}
	for i := range flushing {
		flushing[i] = nil
	}
	flushing = flushing[:0]
	m.Mutex.Unlock()
}

func getSocketForLibContext(uc *utpContext) *Socket {
	return libContextToSocket[uc]
}

func errorForCode(code C.int) error {
	return errors.New(libErrorCodeNames(code))
}
