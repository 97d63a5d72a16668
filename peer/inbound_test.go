package peer

import (
	"testing"
	"time"
)

// A reader waiting for room wakes when the loop releases enough, when its
// connection closes, and when the torrent stops; a message larger than
// the whole budget passes once nothing else is held.
func TestByteBudget(t *testing.T) {
	done := make(chan struct{})
	b := newByteBudget(100, done)
	if !b.tryAcquire(60) || b.tryAcquire(50) {
		t.Fatal("tryAcquire: 60 then 50 of 100")
	}
	got := make(chan bool, 1)
	go func() { got <- b.acquire(50, nil) }()
	select {
	case <-got:
		t.Fatal("acquired beyond the budget")
	case <-time.After(20 * time.Millisecond):
	}
	b.release(60)
	if !<-got || b.inUse() != 50 {
		t.Fatalf("after release: %d in use", b.inUse())
	}

	closed := make(chan struct{})
	go func() { got <- b.acquire(60, closed) }()
	close(closed)
	if <-got {
		t.Fatal("acquired after the connection closed")
	}
	go func() { got <- b.acquire(60, nil) }()
	close(done)
	if <-got {
		t.Fatal("acquired after the torrent stopped")
	}

	b.release(50)
	if !b.tryAcquire(1000) {
		t.Fatal("a message larger than the budget must pass when nothing is held")
	}
}
