package storage

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// cancelAfter is a context that reports itself canceled after n calls of
// Err: a check cut short at a chosen point, without a clock.
type cancelAfter struct {
	context.Context
	n atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// A check of existing data stops when its context is done, between
// pieces: it keeps what verified so far and returns the context's error.
func TestRecoverContextCanceled(t *testing.T) {
	info, content := singleFile(t)
	if info.NumPieces() < 4 {
		t.Fatalf("%d pieces: the test wants a few", info.NumPieces())
	}
	dir := t.TempDir()
	placeFile(t, dir, info, 0, content)
	s := mustOpen(t, dir, info)
	defer s.Close()
	ctx := &cancelAfter{Context: context.Background()}
	ctx.n.Store(2)
	n, _, err := s.RecoverContext(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("RecoverContext = %d, %v; want context.Canceled", n, err)
	}
	if n >= info.NumPieces() {
		t.Fatalf("all %d pieces checked despite the cancel", n)
	}
	// The same storage checks again, to the end, with a live context.
	if n, _, err := s.RecoverContext(context.Background()); err != nil || n != info.NumPieces() {
		t.Fatalf("RecoverContext again = %d, %v; want all %d", n, err, info.NumPieces())
	}
}

// The look at a file that predates the torrent stops with its context
// too: a large foreign file is not read to its end.
func TestForeignCheckCanceled(t *testing.T) {
	info, _ := singleFile(t)
	dir := t.TempDir()
	placeFile(t, dir, info, 0, make([]byte, info.Length)) // zeros: no piece verifies, all is read
	s := mustOpen(t, dir, info)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.foreignFits(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("foreignFits = %v, want context.Canceled", err)
	}
	if ok, err := s.foreignFits(context.Background(), 0); err != nil || !ok {
		t.Fatalf("foreignFits = %v, %v; want a file of zeros to fit", ok, err)
	}
}
