package storage

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"sync"
)

// errPaddingData is returned for non-zero writes into a padding file: the
// data cannot be stored and a correct peer never sends it.
var errPaddingData = errors.New("non-zero data in padding file")

// fileAt returns the index of the first file that contains byte off of the
// stream (empty files contain nothing and are skipped).
func (s *Storage) fileAt(off int64) int {
	return sort.Search(len(s.files), func(i int) bool {
		return s.files[i].offset+s.files[i].length > off
	})
}

// ReadAt reads from the torrent's byte stream, spanning files as needed.
// Padding reads as zeros. A read past the end of the stream returns io.EOF
// as io.ReaderAt requires; a missing file gives an error wrapping
// fs.ErrNotExist and a file shorter than expected one wrapping
// io.ErrUnexpectedEOF.
func (s *Storage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	total := s.info.Length
	if off >= total {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want, atEOF := p, false
	if int64(len(p)) > total-off {
		want, atEOF = p[:total-off], true
	}
	n := 0
	for i := s.fileAt(off); n < len(want); i++ {
		f := &s.files[i]
		pos := off + int64(n) - f.offset
		chunk := int(min(int64(len(want)-n), f.length-pos))
		if chunk <= 0 {
			continue
		}
		dst := want[n : n+chunk]
		if f.padding {
			clear(dst)
			n += chunk
			continue
		}
		h, err := s.handle(i, false)
		if err != nil {
			return n, fmt.Errorf("read: %w", err)
		}
		m, err := h.f.ReadAt(dst, pos)
		s.release(h, false)
		n += m
		if m < chunk {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, pathErr("read", f.path, err)
		}
	}
	if atEOF {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes into the torrent's byte stream, spanning files as needed.
// The whole range must lie within the stream, and any part that falls into
// padding must be zeros; both are checked before anything is written.
func (s *Storage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > s.info.Length || int64(len(p)) > s.info.Length-off {
		return 0, fmt.Errorf("write %d bytes at %d: outside torrent of %d bytes", len(p), off, s.info.Length)
	}
	first := s.fileAt(off)
	// Validate padding first so a bad write leaves no partial effect.
	for i, n := first, 0; n < len(p); i++ {
		f := &s.files[i]
		pos := off + int64(n) - f.offset
		chunk := int(min(int64(len(p)-n), f.length-pos))
		if chunk <= 0 {
			continue
		}
		if f.padding && !allZero(p[n:n+chunk]) {
			return 0, fmt.Errorf("write at %d: %w", off+int64(n), errPaddingData)
		}
		if !f.padding {
			if err := s.foreignErr(i); err != nil {
				return 0, err
			}
		}
		n += chunk
	}
	if len(p) > 0 {
		if err := s.claim(); err != nil {
			return 0, err
		}
	}
	n := 0
	for i := first; n < len(p); i++ {
		f := &s.files[i]
		pos := off + int64(n) - f.offset
		chunk := int(min(int64(len(p)-n), f.length-pos))
		if chunk <= 0 {
			continue
		}
		if f.padding {
			n += chunk
			continue
		}
		h, err := s.handle(i, true)
		if err != nil {
			return n, fmt.Errorf("write: %w", err)
		}
		var m int
		ok := false
		if d := s.directFor(h); d != nil {
			if m, ok, err = s.writeDirect(h.f, d, p[n:n+chunk], pos); !ok {
				s.refuseDirect(h)
			}
		}
		if !ok {
			m, err = h.f.WriteAt(p[n:n+chunk], pos)
		}
		s.release(h, true)
		n += m
		if err == nil && m < chunk {
			err = io.ErrShortWrite
		}
		if err != nil {
			return n, pathErr("write", f.path, err)
		}
	}
	return n, nil
}

// pathErr adds the path to err unless an *fs.PathError already names it, to
// keep messages readable ("write /x: no space left on device").
func pathErr(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

var zeros [4096]byte

func allZero(p []byte) bool {
	for len(p) > 0 {
		k := min(len(p), len(zeros))
		if !bytes.Equal(p[:k], zeros[:k]) {
			return false
		}
		p = p[k:]
	}
	return true
}

// blockOffset checks that [begin, begin+n) lies within piece and returns its
// stream offset.
func (s *Storage) blockOffset(piece int, begin int64, n int) (int64, error) {
	if piece < 0 || piece >= s.info.NumPieces() {
		return 0, fmt.Errorf("piece %d out of range [0, %d)", piece, s.info.NumPieces())
	}
	size := s.info.PieceSize(piece)
	if begin < 0 || begin > size || int64(n) > size-begin {
		return 0, fmt.Errorf("block %d+%d outside piece %d of %d bytes", begin, n, piece, size)
	}
	return int64(piece)*s.info.PieceLength + begin, nil
}

// ReadBlock reads len(p) bytes at begin within piece.
func (s *Storage) ReadBlock(piece int, begin int64, p []byte) error {
	off, err := s.blockOffset(piece, begin, len(p))
	if err != nil {
		return fmt.Errorf("read block: %w", err)
	}
	if _, err := s.ReadAt(p, off); err != nil {
		return fmt.Errorf("read block %d+%d of piece %d: %w", begin, len(p), piece, err)
	}
	return nil
}

// WriteBlock writes p at begin within piece.
func (s *Storage) WriteBlock(piece int, begin int64, p []byte) error {
	off, err := s.blockOffset(piece, begin, len(p))
	if err != nil {
		return fmt.Errorf("write block: %w", err)
	}
	if _, err := s.WriteAt(p, off); err != nil {
		return fmt.Errorf("write block %d+%d of piece %d: %w", begin, len(p), piece, err)
	}
	return nil
}

// verifyChunk bounds the memory VerifyPiece needs regardless of the piece
// length a torrent declares.
const verifyChunk = 1 << 20

var verifyBufs = sync.Pool{New: func() any { b := make([]byte, verifyChunk); return &b }}

// VerifyPiece re-reads piece p from disk and compares its SHA-1 with the one
// in the info dictionary. Missing or short files make it false, not an error:
// that is the normal state of a piece not yet downloaded.
func (s *Storage) VerifyPiece(p int) (bool, error) {
	if p < 0 || p >= s.info.NumPieces() {
		return false, fmt.Errorf("verify piece %d: out of range [0, %d)", p, s.info.NumPieces())
	}
	bp := verifyBufs.Get().(*[]byte)
	defer verifyBufs.Put(bp)
	buf := *bp
	h := sha1.New()
	off := int64(p) * s.info.PieceLength
	for left := s.info.PieceSize(p); left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := s.ReadAt(buf[:k], off); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, fmt.Errorf("verify piece %d: %w", p, err)
		}
		h.Write(buf[:k])
		off += k
		left -= k
	}
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	return sum == s.info.Pieces[p], nil
}
