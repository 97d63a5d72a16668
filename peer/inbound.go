package peer

import (
	"sync"
	"unsafe"
)

// maxInboundBytes bounds the messages that the connections' readers have
// read and handed to the loop (or are about to) but the loop has not yet
// handled, over all of a torrent's connections. The event queue alone is
// bounded by count, and a count of events of up to maxBatch messages,
// each up to the longest message allowed, is hundreds of MiB. A reader
// that finds the budget spent waits, and the peer behind it waits on TCP
// flow control.
const maxInboundBytes = 8 << 20

// inMsgCost is what a message costs beyond its payload: its place in a
// batch. It keeps a flood of tiny messages (have, port) bounded as well.
const inMsgCost = int64(unsafe.Sizeof(inMsg{}))

// byteBudget is a counting semaphore of bytes. The loop only releases,
// never acquires, so a reader waiting for room can never hold the loop
// up; done (the torrent stopping) and the reader's connection closing
// end a wait.
type byteBudget struct {
	max  int64
	done <-chan struct{}

	mu      sync.Mutex
	used    int64
	waiters int
	wake    chan struct{} // closed when bytes are released to waiters
}

func newByteBudget(max int64, done <-chan struct{}) *byteBudget {
	return &byteBudget{max: max, done: done, wake: make(chan struct{})}
}

// A nil budget is unlimited: a conn outside a torrent has none.

// tryAcquire takes n bytes if they fit. A message larger than the whole
// budget fits when nothing else is held, so no message waits forever.
func (b *byteBudget) tryAcquire(n int64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used > 0 && b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// acquire takes n bytes, waiting for room; false when closed is closed or
// the torrent stops first.
func (b *byteBudget) acquire(n int64, closed <-chan struct{}) bool {
	if b == nil {
		return true
	}
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return true
		}
		b.waiters++
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-closed:
		case <-b.done:
		}
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		select {
		case <-closed:
			return false
		case <-b.done:
			return false
		default:
		}
	}
}

// release gives n bytes back and wakes the waiters to compete for them.
func (b *byteBudget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.waiters > 0 {
		close(b.wake)
		b.wake = make(chan struct{})
	}
}

// inUse is the bytes held now.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
