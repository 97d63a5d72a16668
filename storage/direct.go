package storage

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Direct I/O. A download writes its whole size once and, while it
// downloads, never reads it back: routing those writes through the page
// cache costs a copy into freshly allocated cache pages per 4 KiB (the
// dominant CPU cost of a fast download) and evicts whatever the machine
// had cached. With direct I/O (O_DIRECT, Linux) the verified piece goes
// from our buffer to the device. Only whole aligned blocks can go that
// way: a segment's unaligned head and tail (file starts and ends that are
// not multiples of DirectAlign) are written through the page cache. The two
// never touch the same page, since direct writes cover whole aligned
// pages only, so there is no cache coherency hazard. Reads (seeding,
// verification) always use the page cache.
//
// It is libtorrent 1.x's disable_os_cache. Where the platform or the file
// system refuses O_DIRECT, writes fall back to the page cache silently.

// DirectAlign is the offset, length and memory alignment of direct
// writes: a page, which satisfies every block device's logical block size
// up to 4 KiB.
const DirectAlign = 4096

// NewAligned returns memory from which Aligned can cut an n-byte buffer
// at any offset from a DirectAlign-aligned address.
func NewAligned(n int) []byte { return make([]byte, n+DirectAlign) }

// Aligned returns the n bytes of raw (from NewAligned(m), m >= n) that
// start off bytes (modulo DirectAlign) past a DirectAlign-aligned address.
// A caller that keeps raw can cut a buffer for another offset from it
// later, which is why the two are apart.
func Aligned(raw []byte, off, n int) []byte {
	base := (DirectAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%DirectAlign)) % DirectAlign
	start := (base + off%DirectAlign) % DirectAlign
	return raw[start : start+n]
}

// directChunk is the scratch buffer for data that is not aligned in
// memory (a segment of a file that starts at an unaligned stream offset).
const directChunk = 256 << 10

var directScratch = sync.Pool{New: func() any {
	b := NewAligned(directChunk)
	return &b
}}

// directFile is what a direct write needs; *os.File satisfies it.
type directFile interface {
	WriteAt(p []byte, off int64) (int, error)
	Close() error
}

// BufferOffset is where, relative to a DirectAlign-aligned address, a buffer
// holding piece p should start so that direct writes of the piece's first
// file need no copy: that file's aligned file offsets then fall on aligned
// memory. Any value works (unaligned data is copied); this one is
// cheapest.
func (s *Storage) BufferOffset(p int) int {
	off := int64(p) * s.info.PieceLength
	if p < 0 || off >= s.info.Length {
		return 0
	}
	f := &s.files[s.fileAt(off)]
	return int(((off-f.offset)%DirectAlign + DirectAlign) % DirectAlign)
}

// SetDirectIO turns direct writes on or off (default off). It applies to
// files opened for writing afterwards; call it right after Open.
func (s *Storage) SetDirectIO(on bool) { s.direct.Store(on) }

// DirectBytes is how many bytes went to disk by direct I/O, for tests and
// statistics.
func (s *Storage) DirectBytes() int64 { return s.directBytes.Load() }

type directState struct {
	direct      atomic.Bool
	directBytes atomic.Int64
	// realFiles: the files are the operating system's (not a test's
	// injected handles), so a second, direct descriptor is meaningful.
	realFiles bool
}

// directFor returns the direct descriptor for h, opening it on first use,
// or nil when direct writes are off or impossible for it.
func (s *Storage) directFor(h *handle) directFile {
	if !s.direct.Load() || !s.realFiles {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !h.writable || h.noDirect {
		return nil
	}
	if h.direct == nil {
		if fi, err := h.f.Stat(); err == nil {
			h.direct = openDirect(func(flag int) (*os.File, error) {
				var f *os.File
				err := s.inRoot(h.path, func(root *os.Root, rel string) (err error) {
					f, err = root.OpenFile(rel, flag, 0)
					return err
				})
				return f, err
			}, fi)
		}
		h.noDirect = h.direct == nil
	}
	return h.direct
}

// refuseDirect stops direct writes through h after the file system
// refused one.
func (s *Storage) refuseDirect(h *handle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h.noDirect = true
}

func aligned(p []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(p)))%DirectAlign == 0
}

func alignedScratch() (*[]byte, []byte) {
	bp := directScratch.Get().(*[]byte)
	return bp, Aligned(*bp, 0, directChunk)
}

// writeDirect writes p at pos of one file: the aligned middle through
// d, the rest through h. If d refuses (EINVAL: the file system or the
// alignment will not do), it reports ok=false before writing anything
// through d, and the caller goes on without direct I/O for this file.
func (s *Storage) writeDirect(h fileHandle, d directFile, p []byte, pos int64) (n int, ok bool, err error) {
	head := int(min(int64(len(p)), (DirectAlign-pos%DirectAlign)%DirectAlign))
	mid := (len(p) - head) &^ (DirectAlign - 1)
	if mid == 0 {
		n, err = h.WriteAt(p, pos)
		return n, true, err
	}
	if err := s.writeMiddle(d, p[head:head+mid], pos+int64(head)); err != nil {
		if errors.Is(err, syscall.EINVAL) {
			return 0, false, nil
		}
		return 0, true, err
	}
	s.directBytes.Add(int64(mid))
	if head > 0 {
		if m, err := h.WriteAt(p[:head], pos); err != nil || m < head {
			return m, true, errShort(err)
		}
	}
	tail := p[head+mid:]
	if len(tail) > 0 {
		m, err := h.WriteAt(tail, pos+int64(head+mid))
		if err != nil || m < len(tail) {
			return head + mid + m, true, errShort(err)
		}
	}
	return len(p), true, nil
}

// writeMiddle writes p, whose offset and length are aligned, through d,
// copying it into aligned scratch memory first if it is not aligned in
// memory.
func (s *Storage) writeMiddle(d directFile, p []byte, pos int64) error {
	if aligned(p) {
		_, err := d.WriteAt(p, pos)
		return err
	}
	bp, scratch := alignedScratch()
	defer directScratch.Put(bp)
	for len(p) > 0 {
		k := copy(scratch, p)
		if _, err := d.WriteAt(scratch[:k], pos); err != nil {
			return err
		}
		p, pos = p[k:], pos+int64(k)
	}
	return nil
}

func errShort(err error) error {
	if err == nil {
		return io.ErrShortWrite
	}
	return err
}
