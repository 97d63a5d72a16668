package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"node/metadata"
)

// resumeDirName is the directory under the download directory that holds
// resume files. Torrents may not use it as their top-level name, or a
// malicious torrent could overwrite another torrent's resume file.
const resumeDirName = ".node"

// fileHandle is what Storage needs from an open file; *os.File satisfies it.
// It exists so tests can inject failures (ENOSPC) without a full disk.
type fileHandle interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Sync() error
}

type openFunc func(name string, flag int, perm os.FileMode) (fileHandle, error)

func osOpenFile(name string, flag int, perm os.FileMode) (fileHandle, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		// Avoid returning a typed nil inside a non-nil interface.
		return nil, err
	}
	return f, nil
}

// file is one torrent file resolved to an absolute path.
type file struct {
	path    string
	length  int64
	offset  int64
	padding bool
}

// handle is a cached open file. A file first opened for reading is not
// truncated to its final length (that would change its mtime and defeat the
// resume fast path); sized records that the write path has done it.
type handle struct {
	f        fileHandle
	writable bool
	sized    bool
	// direct is a second descriptor of the same file for direct writes
	// (see direct.go); noDirect records that it cannot be had.
	direct   directFile
	noDirect bool
}

func (h *handle) close() error {
	if h.direct != nil {
		h.direct.Close()
	}
	return h.f.Close()
}

// Storage is the files of one torrent under a download directory. It is safe
// for concurrent use: ReadAt/WriteAt rely on positional I/O, and only the
// open-file table and the completion state are locked.
type Storage struct {
	dir      string
	info     *metadata.Info
	files    []file
	openFile openFunc

	mu      sync.Mutex // guards handles, retired, closed
	handles []*handle
	// retired handles were replaced while other goroutines may still be
	// using them; they are closed by Close.
	retired []*handle
	closed  bool

	directState

	cmu           sync.Mutex // guards the completion state
	have          []byte
	numComplete   int
	bytesComplete int64
}

// Open prepares the torrent's files under dir. It validates the layout and
// every path before creating anything; only empty files (and their parent
// directories) are created here, the rest on first write.
func Open(dir string, info *metadata.Info) (*Storage, error) {
	s, err := open(dir, info, osOpenFile)
	if err == nil {
		s.realFiles = true
	}
	return s, err
}

func open(dir string, info *metadata.Info, openFile openFunc) (*Storage, error) {
	if info == nil {
		return nil, errors.New("open storage: nil info")
	}
	if err := checkLayout(info); err != nil {
		return nil, fmt.Errorf("open storage %q: %w", info.Name, err)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	files, err := resolvePaths(absDir, info.Files)
	if err != nil {
		return nil, fmt.Errorf("open storage %q: %w", info.Name, err)
	}
	s := &Storage{
		dir:      absDir,
		info:     info,
		files:    files,
		openFile: openFile,
		handles:  make([]*handle, len(files)),
		have:     make([]byte, (info.NumPieces()+7)/8),
	}
	for _, f := range files {
		if f.length != 0 || f.padding {
			continue
		}
		if err := s.createEmpty(f.path); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// createEmpty makes sure an empty file exists without touching an existing
// empty one (keeping its mtime lets the resume fast path succeed).
func (s *Storage) createEmpty(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return pathErr("create", path, err)
	}
	h, err := s.openFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return pathErr("create", path, err)
	}
	if fi, err := h.Stat(); err == nil && fi.Size() != 0 {
		err = h.Truncate(0)
		if err != nil {
			h.Close()
			return pathErr("truncate", path, err)
		}
	}
	if err := h.Close(); err != nil {
		return pathErr("close", path, err)
	}
	return nil
}

// checkLayout rejects info values whose arithmetic would not add up, so the
// rest of the package can index without further checks.
func checkLayout(info *metadata.Info) error {
	if info.PieceLength <= 0 {
		return fmt.Errorf("invalid piece length %d", info.PieceLength)
	}
	if info.Length < 0 {
		return fmt.Errorf("invalid length %d", info.Length)
	}
	want := info.Length / info.PieceLength
	if info.Length%info.PieceLength != 0 {
		want++
	}
	if int64(info.NumPieces()) != want {
		return fmt.Errorf("%d piece hashes for %d bytes of piece length %d, want %d",
			info.NumPieces(), info.Length, info.PieceLength, want)
	}
	var off int64
	for i, f := range info.Files {
		if f.Length < 0 || f.Length > info.Length-off {
			return fmt.Errorf("file %d: invalid length %d", i, f.Length)
		}
		if f.Offset != off {
			return fmt.Errorf("file %d: offset %d, want %d", i, f.Offset, off)
		}
		off += f.Length
	}
	if off != info.Length {
		return fmt.Errorf("files total %d bytes, info says %d", off, info.Length)
	}
	return nil
}

// resolvePaths checks every path of the torrent and joins it onto dir. It
// only looks at the disk (Lstat), never changes it.
func resolvePaths(dir string, tfiles []metadata.File) ([]file, error) {
	sc := &symlinkChecker{dir: dir, seen: make(map[string]bool)}
	out := make([]file, len(tfiles))
	for i, tf := range tfiles {
		p, err := safeJoin(dir, tf.Path)
		if err != nil {
			return nil, err
		}
		// Padding files are never touched on disk, so where they would
		// point is irrelevant; the name check above still applies.
		if !tf.Padding {
			if err := sc.check(tf.Path); err != nil {
				return nil, err
			}
		}
		out[i] = file{path: p, length: tf.Length, offset: tf.Offset, padding: tf.Padding}
	}
	return out, nil
}

func unsafePath(comps []string, why string) error {
	return fmt.Errorf("%w: %q: %s", metadata.ErrUnsafePath, comps, why)
}

// safeJoin validates the components lexically and joins them onto dir.
func safeJoin(dir string, comps []string) (string, error) {
	if len(comps) == 0 {
		return "", unsafePath(comps, "empty path")
	}
	if comps[0] == resumeDirName {
		return "", unsafePath(comps, "reserved name "+resumeDirName)
	}
	for _, c := range comps {
		switch {
		case c == "":
			return "", unsafePath(comps, "empty component")
		case c == "." || c == "..":
			return "", unsafePath(comps, "relative component")
		case strings.ContainsAny(c, "/\\\x00"):
			return "", unsafePath(comps, "separator or NUL in component")
		}
	}
	p := filepath.Join(append([]string{dir}, comps...)...)
	if !strictlyInside(dir, p) {
		return "", unsafePath(comps, "outside download directory")
	}
	return p, nil
}

// strictlyInside reports whether p is below dir (both clean and absolute).
func strictlyInside(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || filepath.IsAbs(rel) {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// insideOrEqual is strictlyInside that also accepts dir itself.
func insideOrEqual(dir, p string) bool {
	return filepath.Clean(dir) == filepath.Clean(p) || strictlyInside(dir, p)
}

// symlinkChecker walks the existing part of each path and refuses symlinks
// that resolve outside the download directory: writing through one would put
// data wherever the link points.
type symlinkChecker struct {
	dir     string
	realDir string // dir with symlinks resolved, computed on first need
	seen    map[string]bool
}

func (c *symlinkChecker) check(comps []string) error {
	p := c.dir
	for _, comp := range comps {
		p = filepath.Join(p, comp)
		if c.seen[p] {
			continue
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			// Nothing deeper can exist either.
			return nil
		}
		if err != nil {
			return pathErr("check", p, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if c.realDir == "" {
				c.realDir, err = filepath.EvalSymlinks(c.dir)
				if err != nil {
					return pathErr("resolve", c.dir, err)
				}
			}
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				// A dangling link would be followed on creation, to
				// wherever it points.
				return unsafePath(comps, "unresolvable symlink "+p)
			}
			if !insideOrEqual(c.realDir, target) {
				return unsafePath(comps, "symlink "+p+" leads outside download directory")
			}
		}
		c.seen[p] = true
	}
	return nil
}

// Close closes all open files. Storage must not be used afterwards.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for i, h := range s.handles {
		if h == nil {
			continue
		}
		if err := h.close(); err != nil {
			errs = append(errs, pathErr("close", s.files[i].path, err))
		}
		s.handles[i] = nil
	}
	for _, h := range s.retired {
		h.close() // superseded; nothing reads through it any more
	}
	s.retired = nil
	return errors.Join(errs...)
}

var errClosed = fmt.Errorf("storage: %w", fs.ErrClosed)

// handle returns an open file for files[i]. For writing, the file (and its
// directories) is created if needed and brought to its final length; for
// reading, a missing file is an error wrapping fs.ErrNotExist.
func (s *Storage) handle(i int, write bool) (fileHandle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	h := s.handles[i]
	if h != nil && (!write || (h.writable && h.sized)) {
		return h.f, nil
	}
	f := &s.files[i]
	if h != nil && write && h.writable {
		if err := s.size(h.f, f); err != nil {
			return nil, err
		}
		h.sized = true
		return h.f, nil
	}
	var nh *handle
	if write {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return nil, pathErr("create", f.path, err)
		}
		fh, err := s.openFile(f.path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, pathErr("open", f.path, err)
		}
		if err := s.size(fh, f); err != nil {
			fh.Close()
			return nil, err
		}
		nh = &handle{f: fh, writable: true, sized: true}
	} else {
		fh, err := s.openFile(f.path, os.O_RDWR, 0)
		writable := true
		if errors.Is(err, fs.ErrPermission) {
			// Read-only content (e.g. a finished download the user
			// protected) can still be read and seeded.
			fh, err = s.openFile(f.path, os.O_RDONLY, 0)
			writable = false
		}
		if err != nil {
			return nil, pathErr("open", f.path, err)
		}
		if fi, err := fh.Stat(); err != nil || !fi.Mode().IsRegular() {
			fh.Close()
			if err == nil {
				err = errors.New("not a regular file")
			}
			return nil, pathErr("open", f.path, err)
		}
		nh = &handle{f: fh, writable: writable}
	}
	if h != nil {
		s.retired = append(s.retired, h)
	}
	s.handles[i] = nh
	return nh.f, nil
}

// size brings a file to its final length. Truncate does not allocate: the
// file stays sparse and a full disk shows up at WriteAt.
func (s *Storage) size(fh fileHandle, f *file) error {
	fi, err := fh.Stat()
	if err != nil {
		return pathErr("stat", f.path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("open %s: not a regular file", f.path)
	}
	if fi.Size() != f.length {
		if err := fh.Truncate(f.length); err != nil {
			return pathErr("truncate", f.path, err)
		}
	}
	return nil
}

// dropHandles retires all cached handles so the next access reopens the
// files by name: after a restart or external change the cached inode may no
// longer be the file on disk.
func (s *Storage) dropHandles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range s.handles {
		if h != nil {
			s.retired = append(s.retired, h)
			s.handles[i] = nil
		}
	}
}

// syncAll flushes every file opened for writing, so that what a resume file
// claims is on disk really is.
func (s *Storage) syncAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	for i, h := range s.handles {
		if h == nil || !h.writable {
			continue
		}
		if err := h.f.Sync(); err != nil {
			return pathErr("sync", s.files[i].path, err)
		}
	}
	// Retired handles may hold writes made before they were replaced.
	for _, h := range s.retired {
		if h.writable {
			if err := h.f.Sync(); err != nil {
				return fmt.Errorf("sync: %w", err)
			}
		}
	}
	return nil
}
