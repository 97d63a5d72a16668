package storage

import (
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// gatedFile is a real file whose WriteAt can be held before it writes, and
// which numbers its writes and syncs so a test can tell which came last.
type gatedFile struct {
	*os.File
	g *writeGate
}

type writeGate struct {
	hold      atomic.Bool
	entered   chan struct{}
	open      chan struct{}
	seq       atomic.Int64
	lastWrite atomic.Int64
	lastSync  atomic.Int64
}

func (f *gatedFile) WriteAt(p []byte, off int64) (int, error) {
	if f.g.hold.Load() {
		f.g.entered <- struct{}{}
		<-f.g.open
	}
	n, err := f.File.WriteAt(p, off)
	f.g.lastWrite.Store(f.g.seq.Add(1))
	return n, err
}

func (f *gatedFile) Sync() error {
	f.g.lastSync.Store(f.g.seq.Add(1))
	return f.File.Sync()
}

// A save that runs while a write is in flight must not count that write as
// synced: the piece it completes is claimed by the next save, which has to
// fsync the file again. (The dirty flag used to be set when the write took
// the handle, and that save cleared it before the write landed.)
func TestSaveDuringWriteSyncsItLater(t *testing.T) {
	// evict: the handle also leaves the pool after that save, so the
	// write closes it, and the next save syncs the file by name.
	for _, evict := range []bool{false, true} {
		name := "in pool"
		if evict {
			name = "evicted"
		}
		t.Run(name, func(t *testing.T) { saveDuringWrite(t, evict) })
	}
}

func saveDuringWrite(t *testing.T, evict bool) {
	info, content := singleFile(t)
	g := &writeGate{entered: make(chan struct{}, 1), open: make(chan struct{})}
	s, err := open(t.TempDir(), info, func(root *os.Root, name string, flag int, perm os.FileMode) (fileHandle, error) {
		f, err := root.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &gatedFile{File: f, g: g}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	writePieces(t, s, info, content, []int{0}, 1)
	s.MarkComplete(0)
	if err := s.SaveResume(); err != nil {
		t.Fatal(err)
	}

	g.hold.Store(true)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		off := info.PieceLength
		if err := s.WriteBlock(1, 0, content[off:off+blockSize]); err != nil {
			t.Error(err)
		}
	}()
	<-g.entered
	// The periodic save, while the write holds the handle.
	if err := s.SaveResume(); err != nil {
		t.Fatal(err)
	}
	if evict {
		s.dropHandles()
	}
	g.hold.Store(false)
	close(g.open)
	wg.Wait()
	s.MarkComplete(1) // as if the rest of the piece were there too
	if err := s.SaveResume(); err != nil {
		t.Fatal(err)
	}
	if w, y := g.lastWrite.Load(), g.lastSync.Load(); y < w {
		t.Errorf("the save that claims piece 1 did not sync its write: last sync #%d, write #%d", y, w)
	}
}
