package peer

import (
	"context"
	"time"
)

// Progress is which pieces a torrent has verified, and what that comes to
// per file: a detail view's bars.
type Progress struct {
	// Pieces says which pieces are verified on disk; nil before the
	// metadata is known.
	Pieces []bool
	// FileDone is the bytes of verified pieces in each file, in the order
	// of Info().Files (padding files included); nil before the metadata.
	FileDone []int64
}

type progressEvent struct{ reply chan Progress }

func (progressEvent) isEvent() {}

// Progress asks the torrent's loop for its Progress, as Stats does: a
// slice of one bool per piece and a walk over the pieces and files, so a
// view polls it for one torrent at a time, not for a list.
func (t *Torrent) Progress(ctx context.Context) (Progress, error) {
	ch := make(chan Progress, 1)
	select {
	case t.events <- progressEvent{reply: ch}:
	case <-ctx.Done():
		return Progress{}, ctx.Err()
	case <-t.ctx.Done():
		return Progress{}, context.Canceled
	}
	select {
	case p := <-ch:
		return p, nil
	case <-ctx.Done():
		return Progress{}, ctx.Err()
	case <-t.ctx.Done():
		return Progress{}, context.Canceled
	}
}

// progressNow runs on the loop.
func (t *Torrent) progressNow(time.Time) Progress {
	if t.info == nil || t.st == nil {
		return Progress{}
	}
	n := t.info.NumPieces()
	p := Progress{Pieces: make([]bool, n), FileDone: make([]int64, len(t.info.Files))}
	for i := range n {
		p.Pieces[i] = t.st.Complete(i)
	}
	// Files and pieces both run in order over the torrent's byte
	// stream: one pass over each, however many files a piece spans.
	f := 0
	for i := range n {
		if !p.Pieces[i] {
			continue
		}
		start := int64(i) * t.info.PieceLength
		end := start + t.info.PieceSize(i)
		for f < len(t.info.Files) && t.info.Files[f].Offset+t.info.Files[f].Length <= start {
			f++
		}
		for g := f; g < len(t.info.Files); g++ {
			fl := t.info.Files[g]
			if fl.Offset >= end {
				break
			}
			p.FileDone[g] += min(end, fl.Offset+fl.Length) - max(start, fl.Offset)
		}
	}
	return p
}
