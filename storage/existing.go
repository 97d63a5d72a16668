package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrForeignData is wrapped when a file at one of the torrent's paths was
// there before the torrent (no resume record of it) and holds data that is
// not the torrent's: it could be anyone's file that happens to have the
// name, and is not overwritten unless the caller says so (SetOverwrite).
var ErrForeignData = errors.New("existing file holds data that is not the torrent's")

// SetOverwrite lets Recover give files that hold other data to the
// torrent anyway; pieces that verify are still kept. Call it before
// Recover.
func (s *Storage) SetOverwrite(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overwrite = on
}

// claim writes the resume record, if there is none yet, before the first
// write creates or changes a file: from then on the files are known to be
// the torrent's, even if the process is killed before its next save.
func (s *Storage) claim() error {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if s.claimed {
		return nil
	}
	saved, err := s.saveResume()
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// Not saved while a file is someone else's: the files this write
	// creates are then not known to be ours after a restart, which only
	// makes them refused, never overwritten.
	s.claimed = saved
	if !saved {
		return nil
	}
	return s.createPending()
}

// anyForeign reports whether a file is still closed to writes as
// someone else's.
func (s *Storage) anyForeign() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.files {
		if s.files[i].foreign {
			return true
		}
	}
	return false
}

// checkForeign decides about the files that existed before this torrent's
// resume record, once Recover has verified what it could: a file is the
// torrent's if every byte of it outside the verified pieces is zero (a
// hole, or nothing yet), which loses nothing when it is written over.
// Otherwise it stays closed to writes, and the error names it, unless
// SetOverwrite was called.
func (s *Storage) checkForeign(ctx context.Context) error {
	s.mu.Lock()
	overwrite := s.overwrite
	var idx []int
	for i := range s.files {
		if s.files[i].foreign {
			idx = append(idx, i)
		}
	}
	s.mu.Unlock()
	var bad []string
	for _, i := range idx {
		fits, err := s.foreignFits(ctx, i)
		if err != nil {
			return fmt.Errorf("check existing data: %w", err)
		}
		if !fits && !overwrite {
			bad = append(bad, s.files[i].path)
			continue
		}
		s.mu.Lock()
		s.files[i].foreign = false
		s.mu.Unlock()
	}
	switch len(bad) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s: %w", bad[0], ErrForeignData)
	default:
		return fmt.Errorf("%s and %d more: %w", bad[0], len(bad)-1, ErrForeignData)
	}
}

// foreignFits reports whether files[i] holds nothing but the torrent's
// verified pieces and zeros. Something that is not a regular file never
// fits.
func (s *Storage) foreignFits(ctx context.Context, i int) (bool, error) {
	f := &s.files[i]
	// Stat first: opening a FIFO to read would block.
	if fi, err := s.stat(f.path); err == nil && !fi.Mode().IsRegular() {
		return false, nil
	}
	// Non-blocking too: a FIFO may have taken the name since the Stat.
	fh, err := s.openInside(f.path, os.O_RDONLY|oNonBlock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil // gone since Open
	}
	if err != nil {
		return false, pathErr("open", f.path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return false, pathErr("stat", f.path, err)
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	bp := verifyBufs.Get().(*[]byte)
	defer verifyBufs.Put(bp)
	buf := *bp
	size, pl := fi.Size(), s.info.PieceLength
	for pos := int64(0); pos < size; {
		end := size
		if pos < f.length {
			// Up to the end of this piece within the file.
			p := (f.offset + pos) / pl
			end = min(size, f.length, (p+1)*pl-f.offset)
			if s.Complete(int(p)) {
				pos = end
				continue
			}
		}
		for pos < end {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			k := min(end-pos, int64(len(buf)))
			m, err := fh.ReadAt(buf[:k], pos)
			if !allZero(buf[:m]) {
				return false, nil
			}
			pos += int64(m)
			if err == io.EOF || (err == nil && m == 0) {
				return true, nil // shrank while we read
			}
			if err != nil {
				return false, pathErr("read", f.path, err)
			}
		}
	}
	return true, nil
}
