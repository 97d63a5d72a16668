package peer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"node/peer/wire"
)

// patternBlocks serves blocks whose bytes say where they are from.
type patternBlocks struct{ fail bool }

func (p patternBlocks) ReadBlock(piece int, begin int64, b []byte) error {
	if p.fail {
		return errors.New("disk gone")
	}
	for i := range b {
		b[i] = byte(piece*7 + int(begin) + i)
	}
	return nil
}

// recordWriter keeps every write.
type recordWriter struct{ writes [][]byte }

func (w *recordWriter) Write(b []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(b))
	return len(b), nil
}

// TestBatchWriterBound: served blocks leave in writes of at most
// writeBufSize, the buffer never grows past it, and the stream is each
// piece message whole and in order, its block read from storage.
func TestBatchWriterBound(t *testing.T) {
	rw := &recordWriter{}
	w := batchWriter{w: rw}
	var want []byte
	have := (&wire.Message{Type: wire.Have, Index: 3}).Append(nil)
	for i := range 100 {
		r := &blockRead{st: patternBlocks{}, index: uint32(i / 64), begin: uint32(i%64) * wire.BlockSize, fail: func(error) { t.Error("read failed") }}
		if err := w.block(r, wire.BlockSize); err != nil {
			t.Fatal(err)
		}
		blk := make([]byte, wire.BlockSize)
		_ = patternBlocks{}.ReadBlock(int(r.index), int64(r.begin), blk)
		want = append(want, (&wire.Message{Type: wire.Piece, Index: r.index, Begin: r.begin, Block: blk}).Append(nil)...)
		if i%10 == 0 {
			if err := w.write(have); err != nil {
				t.Fatal(err)
			}
			want = append(want, have...)
		}
		if cap(w.buf) > writeBufSize {
			t.Fatalf("buffer grew to %d bytes, bound writeBufSize = %d", cap(w.buf), writeBufSize)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, b := range rw.writes {
		if len(b) > writeBufSize {
			t.Errorf("a write of %d bytes, bound writeBufSize = %d", len(b), writeBufSize)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("stream of %d bytes differs from the %d queued", len(got), len(want))
	}
	if n := len(want)/writeBufSize + 2; len(rw.writes) > n {
		t.Errorf("%d writes for %d bytes, want at most %d", len(rw.writes), len(want), n)
	}
}

// TestBatchWriterSmall: a connection that only sends small messages keeps
// a small buffer, and a message larger than writeBufSize still leaves
// whole.
func TestBatchWriterSmall(t *testing.T) {
	rw := &recordWriter{}
	w := batchWriter{w: rw}
	req := (&wire.Message{Type: wire.Request, Index: 1, Begin: 0, Length: wire.BlockSize}).Append(nil)
	for range 1000 {
		for range 8 {
			if err := w.write(req); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
	}
	if cap(w.buf) > 1<<10 {
		t.Errorf("a connection sending 8 requests a batch holds %d bytes", cap(w.buf))
	}
	big := make([]byte, writeBufSize+100)
	binary.BigEndian.PutUint32(big, uint32(len(big)-4))
	if err := w.write(big); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if last := rw.writes[len(rw.writes)-1]; !bytes.Equal(last, big) {
		t.Errorf("a message of %d bytes left as %d", len(big), len(last))
	}
}

// TestBatchWriterReadFails: a block storage cannot read fails the torrent
// and the write, and nothing of the failed message is written.
func TestBatchWriterReadFails(t *testing.T) {
	rw := &recordWriter{}
	w := batchWriter{w: rw}
	var failed error
	r := &blockRead{st: patternBlocks{fail: true}, index: 0, begin: 0, fail: func(err error) { failed = err }}
	if err := w.block(r, wire.BlockSize); err == nil {
		t.Fatal("a failed read was not an error")
	}
	if failed == nil {
		t.Error("the torrent was not told")
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if len(rw.writes) != 0 {
		t.Errorf("%d writes after a failed read", len(rw.writes))
	}
}
