package storage

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/anacrolix/torrent/bencode"

	"node/storage/atomicfile"
)

const resumeVersion = 1

// resumeData is the bencoded resume file. Sizes of -1 mean the file did not
// exist (or is a padding file, which never exists).
type resumeData struct {
	Version     int64        `bencode:"version"`
	InfoHash    []byte       `bencode:"info-hash"`
	NumPieces   int64        `bencode:"piece count"`
	PieceLength int64        `bencode:"piece length"`
	Bitfield    []byte       `bencode:"bitfield"`
	Files       []resumeFile `bencode:"files"`
	// Checksum is a SHA-1 over all other fields. Size and mtime checks
	// catch changes to the data files, but not a flipped bit in the
	// resume file itself, which could otherwise claim a piece complete.
	Checksum []byte `bencode:"checksum"`
}

type resumeFile struct {
	Size  int64 `bencode:"size"`
	MTime int64 `bencode:"mtime"` // UnixNano
}

func (r *resumeData) checksum() []byte {
	h := sha1.New()
	var b []byte
	b = append(b, "node resume\x00"...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Version))
	b = binary.BigEndian.AppendUint64(b, uint64(len(r.InfoHash)))
	b = append(b, r.InfoHash...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.NumPieces))
	b = binary.BigEndian.AppendUint64(b, uint64(r.PieceLength))
	b = binary.BigEndian.AppendUint64(b, uint64(len(r.Bitfield)))
	b = append(b, r.Bitfield...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(r.Files)))
	for _, f := range r.Files {
		b = binary.BigEndian.AppendUint64(b, uint64(f.Size))
		b = binary.BigEndian.AppendUint64(b, uint64(f.MTime))
	}
	h.Write(b)
	return h.Sum(nil)
}

// resumePath is dir/.node/<info-hash hex>.resume.
func (s *Storage) resumePath() string {
	return filepath.Join(s.dir, resumeDirName, hex.EncodeToString(s.info.InfoHash[:])+".resume")
}

// fileState returns a file's size and mtime, or (-1, 0) if it does not exist
// as a regular file inside the download directory (found through its root,
// as the writes find it: not behind a link that leads out).
func (s *Storage) fileState(path string) (size, mtime int64, err error) {
	fi, err := s.stat(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || rootEscapes(err) {
		return -1, 0, nil // missing, or not where the writes can reach
	}
	if err != nil {
		return -1, 0, pathErr("stat", path, err)
	}
	if !fi.Mode().IsRegular() {
		return -1, 0, nil
	}
	return fi.Size(), fi.ModTime().UnixNano(), nil
}

// SaveResume writes the completion state and the files' current sizes and
// mtimes to the resume file, atomically. Data files are synced first so the
// resume file never claims data that a crash could still lose.
//
// While a file is still closed to writes as someone else's (ErrForeignData,
// a seed that goes on without SetOverwrite), it writes nothing: the record
// would make every file the torrent's on the next run.
func (s *Storage) SaveResume() error {
	_, err := s.saveResume()
	return err
}

// saveResume is SaveResume; saved says whether the record was written.
func (s *Storage) saveResume() (saved bool, err error) {
	// Whole: the bitfield is taken under it, so of two saves the later
	// one, which knows of more pieces, writes last.
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.anyForeign() {
		return false, nil
	}
	have := s.Have()
	if err := s.syncAll(); err != nil {
		return false, fmt.Errorf("save resume: %w", err)
	}
	rd := resumeData{
		Version:     resumeVersion,
		InfoHash:    s.info.InfoHash[:],
		NumPieces:   int64(s.info.NumPieces()),
		PieceLength: s.info.PieceLength,
		Bitfield:    have,
		Files:       make([]resumeFile, len(s.files)),
	}
	for i, f := range s.files {
		if f.padding {
			rd.Files[i] = resumeFile{Size: -1}
			continue
		}
		size, mtime, err := s.fileState(f.path)
		if err != nil {
			return false, fmt.Errorf("save resume: %w", err)
		}
		rd.Files[i] = resumeFile{Size: size, MTime: mtime}
	}
	rd.Checksum = rd.checksum()
	data, err := bencode.Marshal(rd)
	if err != nil {
		return false, fmt.Errorf("save resume: encode: %w", err)
	}
	if err := s.writeResume(data); err != nil {
		return false, fmt.Errorf("save resume: %w", err)
	}
	return true, nil
}

// removeResumeTemps deletes the temporary files of this torrent's resume
// record that a crash left in .node (atomicfile.WriteIn's names), so a
// node that crashes now and then over months does not pile them up.
// Another torrent's are left to it.
func (s *Storage) removeResumeTemps() {
	_ = s.inRoot(s.resumePath(), func(root *os.Root, rel string) error {
		d, err := root.Open(resumeDirName)
		if err != nil {
			return err
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		prefix := "." + filepath.Base(rel) + ".tmp"
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				_ = root.Remove(filepath.Join(resumeDirName, n))
			}
		}
		return err
	})
}

// writeResume replaces the resume record with data so that a crash leaves
// either the old or the new one, through the download directory's root: a
// .node swapped for a link out is not written through.
func (s *Storage) writeResume(data []byte) error {
	if err := s.makeDir(); err != nil {
		return err
	}
	return s.inRoot(s.resumePath(), func(root *os.Root, rel string) error {
		if err := root.MkdirAll(resumeDirName, 0o755); err != nil {
			return err
		}
		return atomicfile.WriteIn(root, rel, data, 0o600)
	})
}

// Recover decides which pieces are complete at start and replaces the
// completion state with the answer. If the resume file is intact and every
// file still has the recorded size and mtime, its bitfield is trusted (fast
// path); otherwise every piece whose files all exist is hashed (slow path).
// Empty and padding files are left out of the comparison: they hold no piece
// data, and Open (or Recover) recreates a deleted empty file.
// An error from the slow path (other than missing or short files) does not
// stop it: the pieces that verified are still marked, and the first error is
// returned.
//
// Files that were on disk before this torrent's resume record existed may
// be someone else's: Recover keeps what verifies in them and lets the
// torrent write to them only if the rest is zeros. If any holds other data
// it stays closed to writes, and the error, wrapping ErrForeignData, names
// it (the pieces that verified are still marked); SetOverwrite(true) gives
// them to the torrent instead.
func (s *Storage) Recover() (n int, fast bool, err error) {
	return s.RecoverContext(context.Background())
}

// RecoverContext is Recover, given up when ctx is done: hashing the
// existing data of a large torrent takes minutes, which a torrent
// stopped meanwhile should not wait for. It then returns ctx's error,
// having marked the pieces verified so far, and created no file.
func (s *Storage) RecoverContext(ctx context.Context) (n int, fast bool, err error) {
	s.resetCompletion()
	// Read current files by name, not through handles to inodes that may
	// have been replaced or deleted since they were opened.
	s.dropHandles()
	if have, err := s.loadResume(); err == nil {
		s.cmu.Lock()
		for p := range s.info.NumPieces() {
			if have[p/8]&(0x80>>(p%8)) != 0 {
				s.markLocked(p)
			}
		}
		n = s.numComplete
		s.cmu.Unlock()
		return n, true, s.settleFiles(ctx)
	}
	n, fast, err = s.recoverSlow(ctx)
	if cerr := ctx.Err(); cerr != nil {
		return n, fast, cerr
	}
	if ferr := s.settleFiles(ctx); err == nil {
		err = ferr
	}
	return n, fast, err
}

// settleFiles decides about existing files (checkForeign) and then, if
// none is someone else's, creates the empty ones Open left for later.
func (s *Storage) settleFiles(ctx context.Context) error {
	if err := s.checkForeign(ctx); err != nil {
		return err
	}
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	return s.createPending()
}

func (s *Storage) recoverSlow(ctx context.Context) (int, bool, error) {
	var firstErr error
	exists := make([]bool, len(s.files))
	for i, f := range s.files {
		if f.padding || f.length == 0 {
			exists[i] = true
			continue
		}
		size, _, err := s.fileState(f.path)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("recover: %w", err)
		}
		exists[i] = err == nil && size >= 0
	}
	for p := range s.info.NumPieces() {
		if ctx.Err() != nil {
			break
		}
		start := int64(p) * s.info.PieceLength
		end := start + s.info.PieceSize(p)
		ok := true
		for i := s.fileAt(start); i < len(s.files) && s.files[i].offset < end; i++ {
			if !exists[i] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		good, err := s.VerifyPiece(p)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("recover: %w", err)
			}
			continue
		}
		if good {
			s.MarkComplete(p)
		}
	}
	return s.NumComplete(), false, firstErr
}

// loadResume returns the bitfield of the resume file if it can be trusted,
// or an error saying why not. Any doubt is an error: the caller then hashes.
func (s *Storage) loadResume() ([]byte, error) {
	var f *os.File
	err := s.inRoot(s.resumePath(), func(root *os.Root, rel string) (err error) {
		// Non-blocking: a FIFO at the name would hold Recover forever.
		f, err = root.OpenFile(rel, os.O_RDONLY|oNonBlock, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", s.resumePath())
	}
	rd, err := s.readResume(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	for i, f := range s.files {
		// Padding is never on disk, and empty files hold no piece data.
		if f.padding || f.length == 0 {
			continue
		}
		rf := rd.Files[i]
		size, mtime, err := s.fileState(f.path)
		if err != nil {
			return nil, err
		}
		if size != rf.Size || mtime != rf.MTime {
			return nil, fmt.Errorf("%s changed since resume was saved", f.path)
		}
		if size == f.length {
			continue
		}
		// The file is absent or has the wrong length, yet unchanged: no
		// piece touching it can be complete, whatever the bitfield says.
		first := int(f.offset / s.info.PieceLength)
		last := int((f.offset + f.length - 1) / s.info.PieceLength)
		for p := first; p <= last; p++ {
			if rd.Bitfield[p/8]&(0x80>>(p%8)) != 0 {
				return nil, fmt.Errorf("resume claims piece %d but %s is incomplete", p, f.path)
			}
		}
	}
	return rd.Bitfield, nil
}

// readResume reads a resume record and checks that it is whole and of
// this torrent (checksum, info-hash, piece and file layout), without
// looking at the files it describes.
func (s *Storage) readResume(r io.Reader) (*resumeData, error) {
	np := s.info.NumPieces()
	bfLen := (np + 7) / 8
	// A bound on a well-formed file, so garbage cannot make us read or
	// decode an arbitrary amount.
	limit := int64(4096 + 2*bfLen + 128*len(s.info.Files))
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read resume: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, errors.New("resume file too large")
	}
	var rd resumeData
	if err := unmarshalNoPanic(data, &rd); err != nil {
		return nil, fmt.Errorf("decode resume: %w", err)
	}
	switch {
	case rd.Version != resumeVersion:
		return nil, fmt.Errorf("resume version %d", rd.Version)
	case !bytes.Equal(rd.Checksum, rd.checksum()):
		return nil, errors.New("resume checksum mismatch")
	case !bytes.Equal(rd.InfoHash, s.info.InfoHash[:]):
		return nil, errors.New("resume info-hash mismatch")
	case rd.NumPieces != int64(np) || rd.PieceLength != s.info.PieceLength:
		return nil, errors.New("resume piece layout mismatch")
	case len(rd.Bitfield) != bfLen:
		return nil, errors.New("resume bitfield length mismatch")
	case len(rd.Files) != len(s.info.Files):
		return nil, errors.New("resume file count mismatch")
	}
	if np%8 != 0 && rd.Bitfield[bfLen-1]&(0xff>>(np%8)) != 0 {
		return nil, errors.New("resume bitfield has spare bits set")
	}
	return &rd, nil
}

// unmarshalNoPanic decodes bencode, turning any panic in the decoder into an
// error: the resume file is input, and input must not crash the client.
func unmarshalNoPanic(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bencode decoder panicked: %v", r)
		}
	}()
	return bencode.Unmarshal(data, v)
}
