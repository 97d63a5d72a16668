package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

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

// openFunc opens name (relative) in root.
type openFunc func(root *os.Root, name string, flag int, perm os.FileMode) (fileHandle, error)

func osOpenFile(root *os.Root, name string, flag int, perm os.FileMode) (fileHandle, error) {
	f, err := root.OpenFile(name, flag, perm)
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
	// foreign: the file was on disk before this torrent's resume record
	// existed, so it may be someone else's; nothing writes to it until
	// Recover has found it holds only this torrent's data (or the caller
	// chose to overwrite). Guarded by Storage.mu.
	foreign bool
}

// maxOpenFiles bounds the open-file pool, so a torrent of thousands of
// files does not run into the descriptor limit (libtorrent keeps 40 too).
// A file opened for direct writes holds a second descriptor, and a file
// evicted while a read or write is using it stays open until that ends,
// so the descriptors used are at most 2*maxOpenFiles plus one per I/O in
// progress.
const maxOpenFiles = 40

// handle is an open file in the pool. A file first opened for reading is
// not truncated to its final length (that would change its mtime and
// defeat the resume fast path); sized records that the write path has
// done it. All fields but f and path are guarded by Storage.mu.
type handle struct {
	i        int
	f        fileHandle
	path     string // the file's path (opened through the download directory's root)
	writable bool
	sized    bool
	// dirty: the file may hold writes not yet synced. A write sets it
	// when it releases the handle, after its data is in the page cache:
	// set when the write starts, a sync running meanwhile would clear it
	// and the write would land after that sync, unsynced and forgotten.
	dirty bool
	// direct is a second descriptor of the same file for direct writes
	// (see direct.go); noDirect records that it cannot be had.
	direct   directFile
	noDirect bool
	// refs counts reads and writes in progress through f; an evicted
	// handle is closed by the last of them, never under one.
	refs    int
	evicted bool
}

func (h *handle) close() error {
	if h.direct != nil {
		h.direct.Close()
	}
	return h.f.Close()
}

// Storage is the files of one torrent under a download directory. It is safe
// for concurrent use: ReadAt/WriteAt rely on positional I/O, and only the
// open-file pool and the completion state are locked.
type Storage struct {
	dir      string
	info     *metadata.Info
	files    []file
	openFile openFunc

	// syncMu serializes syncAll: a save must not find a file clean
	// because another save cleared the flag and has not yet synced it.
	syncMu sync.Mutex
	// saveMu serializes saveResume (see there).
	saveMu sync.Mutex

	mu   sync.Mutex // guards pool, the handles, unsynced, closeErr, closed, overwrite, files[].foreign
	pool *simplelru.LRU[int, *handle]
	// unsynced are files written through handles closed since the last
	// syncAll: fsync works on the file, so syncAll reopens them.
	unsynced map[int]bool
	// closeErr is the first failed close of a written file: the data
	// may not be on disk, so the next syncAll (and resume save) fails.
	closeErr  error
	closed    bool
	overwrite bool

	// claimed: this torrent's resume record exists, so the files are
	// ours. Before the first write creates or changes a file, the record
	// is written, so that a restart (even after a kill) knows them.
	claimMu sync.Mutex
	claimed bool
	// emptyPending: Open found files that may be someone else's and left
	// the empty files for Recover, so that refusing the torrent leaves the
	// directory as it was. Guarded by claimMu.
	emptyPending bool

	realDirMu sync.Mutex
	realDir   string // see resolvedDir

	// afterChecks, if set (tests), runs between openInside's checks by
	// name and its open.
	afterChecks func(path string)

	directState

	cmu           sync.Mutex // guards the completion state
	have          []byte
	numComplete   int
	bytesComplete int64
}

// Open prepares the torrent's files under dir. It validates the layout and
// every path before creating anything. Empty files (and their parent
// directories) are created here, unless a file may be someone else's: then
// Recover creates them once it has found none is (so a refusal creates
// nothing); the rest on first write.
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
		unsynced: make(map[int]bool),
		have:     make([]byte, (info.NumPieces()+7)/8),
	}
	s.pool, _ = simplelru.NewLRU(maxOpenFiles, s.evicted)
	s.removeResumeTemps()
	if s.inRoot(s.resumePath(), func(root *os.Root, rel string) error {
		fi, err := root.Lstat(rel)
		if err == nil && !fi.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		return err
	}) == nil {
		s.claimed = true
	} else {
		s.emptyPending = true
		// An empty file holds no one's data; anything else is decided
		// by Recover.
		for i := range s.files {
			f := &s.files[i]
			fi, err := s.stat(f.path)
			f.foreign = !f.padding && err == nil && (fi.Size() > 0 || !fi.Mode().IsRegular())
		}
	}
	if !s.anyForeign() {
		if err := s.createEmpties(); err != nil {
			return nil, err
		}
		s.emptyPending = false
	}
	return s, nil
}

// createEmpties creates the torrent's empty files, since no write ever
// would.
func (s *Storage) createEmpties() error {
	for _, f := range s.files {
		if f.length != 0 || f.padding {
			continue
		}
		if err := s.createEmpty(f.path); err != nil {
			return err
		}
	}
	return nil
}

// createPending creates the empty files if Open left them for later and
// no file is someone else's any more. Called with claimMu held.
func (s *Storage) createPending() error {
	if !s.emptyPending || s.anyForeign() {
		return nil
	}
	if err := s.createEmpties(); err != nil {
		return err
	}
	s.emptyPending = false
	return nil
}

// createEmpty makes sure an empty file exists without touching an existing
// empty one (keeping its mtime lets the resume fast path succeed).
func (s *Storage) createEmpty(path string) error {
	if err := s.mkdirInside(path); err != nil {
		return err
	}
	h, err := s.openInside(path, os.O_RDWR|os.O_CREATE, 0o644)
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

// openInside opens path, following a symlink on it only if the link
// leads inside the download directory (Open allows those): the link may
// have appeared since Open checked the paths, and writing through it
// would put data wherever it points. The checks by name say what is
// wrong; the open itself walks from the download directory one
// component at a time (os.Root), so a directory swapped for a symlink
// out after the checks is not followed either.
func (s *Storage) openInside(path string, flag int, perm os.FileMode) (fileHandle, error) {
	if err := s.dirInside(path); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if why := rootRefuses(s.dir, path); why != "" {
			return nil, fmt.Errorf("%w: %s: %s", metadata.ErrUnsafePath, path, why)
		}
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, fmt.Errorf("%w: unresolvable symlink %s", metadata.ErrUnsafePath, path)
		}
		realDir, err := s.resolvedDir()
		if err != nil {
			return nil, err
		}
		if !strictlyInside(realDir, target) {
			return nil, fmt.Errorf("%w: symlink %s leads outside download directory", metadata.ErrUnsafePath, path)
		}
	}
	if s.afterChecks != nil {
		s.afterChecks(path)
	}
	var fh fileHandle
	err := s.inRoot(path, func(root *os.Root, rel string) (err error) {
		fh, err = s.openFile(root, rel, flag, perm)
		return err
	})
	return fh, err
}

// inRoot calls f with the download directory opened as an os.Root and
// path relative to it. An error from f that the checks by name now
// explain (a swap since they ran), or that is the root's refusal to
// leave the directory, is ErrUnsafePath. The root follows a symlink only
// while it stays inside, and never an absolute one, even to a place
// inside.
func (s *Storage) inRoot(path string, f func(root *os.Root, rel string) error) error {
	return withRoot(s.dir, path, func(root *os.Root, rel string) error {
		err := f(root, rel)
		if err == nil {
			return nil
		}
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) && !filepath.IsAbs(pe.Path) {
			pe.Path = filepath.Join(s.dir, pe.Path) // the root's names are relative
		}
		if derr := s.dirInside(path); derr != nil {
			return derr
		}
		if rootEscapes(err) {
			return fmt.Errorf("%w: %s: %w", metadata.ErrUnsafePath, path, err)
		}
		return err
	})
}

// withRoot calls f with dir opened as an os.Root and path relative to it,
// or says path is not inside dir. The root is opened for each call: opens
// are rare (file handles are pooled), and no descriptor outlives it.
func withRoot(dir, path string, f func(root *os.Root, rel string) error) error {
	rel, err := filepath.Rel(dir, path)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("%w: %s is not inside the download directory", metadata.ErrUnsafePath, path)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return f(root, rel)
}

// errRootEscapes is os.Root's (unexported) error for a walk that would
// leave the root: an absolute symlink, or one that climbs out. It is
// learnt once by asking a root for its parent.
var errRootEscapes = sync.OnceValue(func() error {
	root, err := os.OpenRoot(os.TempDir())
	if err != nil {
		return nil
	}
	defer root.Close()
	_, err = root.Lstat("..")
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return nil
})

// rootEscapes reports whether err is os.Root's refusal to leave the root.
func rootEscapes(err error) bool {
	e := errRootEscapes()
	return e != nil && errors.Is(err, e)
}

// dirInside reports an error if the directory that holds path, or the
// deepest part of it that exists, resolves outside the download
// directory: Open checked the paths, but a directory on one may have been
// swapped for a symlink to elsewhere since, and creating or opening
// through it would put the torrent's data there. This is checked before
// each open by name and so still leaves a race with a swap in between.
func (s *Storage) dirInside(path string) error {
	d := filepath.Dir(path)
	for strictlyInside(s.dir, d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		d = filepath.Dir(d)
	}
	if !strictlyInside(s.dir, d) {
		return nil // the download directory itself is the user's choice
	}
	resolved, err := filepath.EvalSymlinks(d)
	if err != nil {
		return fmt.Errorf("%w: unresolvable directory %s: %w", metadata.ErrUnsafePath, d, err)
	}
	realDir, err := s.resolvedDir()
	if err != nil {
		return err
	}
	if !insideOrEqual(realDir, resolved) {
		return fmt.Errorf("%w: %s leads outside download directory", metadata.ErrUnsafePath, d)
	}
	return nil
}

// resolvedDir is the download directory with symlinks resolved, found
// once: it exists by the time anything inside it does.
func (s *Storage) resolvedDir() (string, error) {
	s.realDirMu.Lock()
	defer s.realDirMu.Unlock()
	if s.realDir == "" {
		d, err := filepath.EvalSymlinks(s.dir)
		if err != nil {
			return "", pathErr("resolve", s.dir, err)
		}
		s.realDir = d
	}
	return s.realDir, nil
}

// mkdirInside creates the directories of path, once dirInside has found
// that the part that exists is inside the download directory.
func (s *Storage) mkdirInside(path string) error {
	if err := s.dirInside(path); err != nil {
		return err
	}
	if err := s.makeDir(); err != nil {
		return err
	}
	err := s.inRoot(path, func(root *os.Root, rel string) error {
		if d := filepath.Dir(rel); d != "." {
			return root.MkdirAll(d, 0o755)
		}
		return nil
	})
	if err != nil {
		return pathErr("create", path, err)
	}
	return nil
}

// stat is os.Stat of path as the writes reach it: through the download
// directory's root.
func (s *Storage) stat(path string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := s.inRoot(path, func(root *os.Root, rel string) (err error) {
		fi, err = root.Stat(rel)
		return err
	})
	return fi, err
}

// makeDir creates the download directory itself (the user's choice, as
// are the directories above it) if it is missing: everything under it is
// then made through its root.
func (s *Storage) makeDir() error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return pathErr("create", s.dir, err)
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

// rootRefuses says why the writes, which walk from dir (see inRoot),
// would not follow the symlink at p, or "" if they would: os.Root itself
// is asked, so the rule is the one the writes meet (an absolute target,
// a Windows junction among them, or one that climbs out of dir, even to
// come back in by dir's own name).
func rootRefuses(dir, p string) string {
	err := withRoot(dir, p, func(root *os.Root, rel string) error {
		_, err := root.Stat(rel)
		return err
	})
	switch {
	case errors.Is(err, metadata.ErrUnsafePath):
		return p + " is not inside the download directory"
	case rootEscapes(err):
		return "symlink " + p + " is not followed from the download directory (absolute, or climbing out of it)"
	}
	return ""
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
			if why := rootRefuses(c.dir, p); why != "" {
				return unsafePath(comps, why)
			}
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

// Close closes all open files. Storage must not be used afterwards; a read
// or write still in progress keeps its file open until it returns.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.pool.Purge()
	err := s.closeErr
	s.closeErr = nil
	return err
}

var errClosed = fmt.Errorf("storage: %w", fs.ErrClosed)

// evicted is the pool's eviction callback, called with s.mu held.
func (s *Storage) evicted(_ int, h *handle) {
	h.evicted = true
	if h.refs == 0 {
		s.closeHandle(h)
	}
}

// closeHandle closes h, remembering to sync the file if it was written.
// Called with s.mu held.
func (s *Storage) closeHandle(h *handle) {
	if h.writable && h.dirty {
		s.unsynced[h.i] = true
	}
	if err := h.close(); err != nil && h.writable && s.closeErr == nil {
		s.closeErr = pathErr("close", s.files[h.i].path, err)
	}
}

// release ends a read or write through h; write says it was a write,
// which may have changed the file (even if it failed part way).
func (s *Storage) release(h *handle, write bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h.dirty = h.dirty || write
	h.refs--
	if h.refs == 0 && h.evicted {
		s.closeHandle(h)
	}
}

// foreignErr refuses writes to files[i] while it may hold someone else's
// data (see Recover).
func (s *Storage) foreignErr(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files[i].foreign {
		return fmt.Errorf("write %s: %w", s.files[i].path, ErrForeignData)
	}
	return nil
}

// handle returns an open file for files[i] from the pool, opening it if
// needed; the caller must release it. For writing, the file (and its
// directories) is created if needed and brought to its final length; for
// reading, a missing file is an error wrapping fs.ErrNotExist.
func (s *Storage) handle(i int, write bool) (*handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	f := &s.files[i]
	if write && f.foreign {
		return nil, fmt.Errorf("write %s: %w", f.path, ErrForeignData)
	}
	h, ok := s.pool.Get(i)
	if ok && write && h.writable && !h.sized {
		if err := s.size(h.f, f); err != nil {
			return nil, err
		}
		h.sized, h.dirty = true, true
	}
	if ok && (!write || h.writable) {
		h.refs++
		return h, nil
	}
	var nh *handle
	if write {
		if err := s.mkdirInside(f.path); err != nil {
			return nil, err
		}
		fh, err := s.openInside(f.path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, pathErr("open", f.path, err)
		}
		if err := s.size(fh, f); err != nil {
			fh.Close()
			return nil, err
		}
		// Dirty already: size may have changed its length.
		nh = &handle{f: fh, path: f.path, writable: true, sized: true, dirty: true}
	} else {
		fh, err := s.openInside(f.path, os.O_RDWR, 0)
		writable := true
		if errors.Is(err, fs.ErrPermission) {
			// Read-only content (e.g. a finished download the user
			// protected) can still be read and seeded.
			fh, err = s.openInside(f.path, os.O_RDONLY, 0)
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
		nh = &handle{f: fh, path: f.path, writable: writable}
	}
	nh.i, nh.refs = i, 1
	if ok {
		// Replaced by a writable one; closed once its I/O is done.
		s.pool.Remove(i)
	}
	s.pool.Add(i, nh)
	return nh, nil
}

// size brings a file to its final length: a shorter one is given the
// blocks it lacks where the file system can (preallocate), and is
// otherwise truncated, which leaves it sparse. Either way a full disk
// shows up at WriteAt: a preallocation that does not fit is not made.
func (s *Storage) size(fh fileHandle, f *file) error {
	fi, err := fh.Stat()
	if err != nil {
		return pathErr("stat", f.path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("open %s: not a regular file", f.path)
	}
	if fi.Size() < f.length {
		if preallocate(fh, fi.Size(), f.length) {
			return nil
		}
		// A fallocate that ran out of room keeps what it got (ext4 does,
		// length and all): a torrent's first write into a file larger
		// than the free space would fill the disk. Give it back.
		if err := fh.Truncate(fi.Size()); err != nil {
			return pathErr("truncate", f.path, err)
		}
	}
	if fi.Size() != f.length {
		if err := fh.Truncate(f.length); err != nil {
			return pathErr("truncate", f.path, err)
		}
	}
	return nil
}

// dropHandles closes the pool's files (or has their I/O in progress close
// them) so the next access reopens them by name: after a restart or
// external change the cached inode may no longer be the file on disk.
func (s *Storage) dropHandles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pool.Purge()
}

// syncAll flushes every file written since the last call, so that what a
// resume file claims is on disk really is. The fsyncs run without the
// lock, so reads and writes go on meanwhile.
func (s *Storage) syncAll() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	var open []*handle
	for _, i := range s.pool.Keys() {
		h, _ := s.pool.Peek(i)
		if h.writable && h.dirty {
			// Cleared before the fsync: a write that ends after
			// it sets the flag again for the next call.
			h.dirty = false
			h.refs++
			open = append(open, h)
		}
	}
	closed := s.unsynced
	s.unsynced = make(map[int]bool)
	err := s.closeErr
	s.closeErr = nil
	s.mu.Unlock()

	var failed []int
	for _, h := range open {
		if serr := h.f.Sync(); serr != nil {
			err = cmp.Or(err, pathErr("sync", s.files[h.i].path, serr))
			failed = append(failed, h.i)
		}
		s.release(h, false)
	}
	for i := range closed {
		if serr := s.syncClosed(i); serr != nil {
			err = cmp.Or(err, serr)
			failed = append(failed, i)
		}
	}
	if len(failed) > 0 {
		// Keep them for the next attempt.
		s.mu.Lock()
		for _, i := range failed {
			s.unsynced[i] = true
		}
		s.mu.Unlock()
	}
	return err
}

// syncClosed fsyncs files[i] through a new descriptor. Whatever is at the
// path now may not be the file written: something that is not a regular
// file holds none of our data (and opening a FIFO could block).
func (s *Storage) syncClosed(i int) error {
	path := s.files[i].path
	fh, err := s.openInside(path, os.O_RDONLY|oNonBlock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing left to sync; SaveResume records it missing
	}
	if err != nil {
		return pathErr("sync", path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return pathErr("sync", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil // SaveResume records it missing too
	}
	if err := fh.Sync(); err != nil {
		return pathErr("sync", path, err)
	}
	return nil
}
