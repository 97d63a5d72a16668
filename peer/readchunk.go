package peer

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"node/peer/wire"
)

// A connection's reader reads into chunks of readBufSize and hands a
// piece message's block to the loop as a slice of its chunk, which the
// loop copies into the piece: each downloaded byte is copied once in
// user space, not twice (a bufio.Reader and then a block buffer). That
// copy was a tenth of a fast download's CPU.
//
// A chunk stays alive while the reader reads into it or a block in it
// waits for the loop; a reader has at most maxReadChunks alive, and
// waits for the loop to hand one back beyond that. The loop never waits
// for a reader, and a reader reads only once it has handed the loop all
// it holds (see readLoop), so the wait always ends. A peer that puts
// one small piece message in every chunk's worth of bytes pins no more
// than maxReadChunks chunks.

// maxReadChunks bounds the chunks one connection's reader keeps alive.
const maxReadChunks = 2

// minChunkRead is the least room the reader wants for a read: with less
// left at the end of its chunk it moves to a fresh one first, so reads
// stay large.
const minChunkRead = 32 << 10

type readChunk struct {
	buf   []byte
	refs  atomic.Int32 // the reader's while it reads into it, and a block's each
	owner *chunkReader
}

var readChunks = sync.Pool{New: func() any { return &readChunk{buf: make([]byte, readBufSize)} }}

// release drops one reference; the last returns the chunk to the pool.
func (ch *readChunk) release() {
	if ch == nil || ch.refs.Add(-1) != 0 {
		return
	}
	o := ch.owner
	ch.owner = nil
	readChunks.Put(ch)
	o.alive.Add(-1)
	select {
	case o.freed <- struct{}{}:
	default:
	}
}

// chunkReader buffers a connection's reads in chunks.
type chunkReader struct {
	rd     io.Reader
	closed <-chan struct{} // ends a wait for a chunk
	cur    *readChunk
	r, w   int // cur.buf[r:w] is read and not yet consumed
	alive  atomic.Int32
	freed  chan struct{} // a chunk of ours went back to the pool
	// waiting, if set (tests), is called when the reader is about to wait
	// for a chunk; waited, if set, once it has had one after waiting.
	waiting, waited func()
}

func newChunkReader(rd io.Reader, closed <-chan struct{}) *chunkReader {
	return &chunkReader{rd: rd, closed: closed, freed: make(chan struct{}, 1)}
}

// close gives back the reader's own reference; blocks handed out keep
// their chunks until released.
func (cr *chunkReader) close() {
	cr.cur.release()
	cr.cur = nil
}

func (cr *chunkReader) buffered() int { return cr.w - cr.r }

// messageBuffered reports whether a whole message is already buffered, so
// reading it cannot block.
func (cr *chunkReader) messageBuffered() bool {
	if cr.buffered() < 4 {
		return false
	}
	return cr.buffered()-4 >= int(binary.BigEndian.Uint32(cr.cur.buf[cr.r:]))
}

// newChunk returns an empty chunk with the reader's reference, waiting
// while maxReadChunks are alive.
func (cr *chunkReader) newChunk() (*readChunk, error) {
	waited := false
	for cr.alive.Load() >= maxReadChunks {
		if cr.waiting != nil {
			cr.waiting()
		}
		select {
		case <-cr.freed:
		case <-cr.closed:
			return nil, context.Canceled
		}
		waited = true
	}
	if waited && cr.waited != nil {
		cr.waited()
	}
	cr.alive.Add(1)
	ch := readChunks.Get().(*readChunk)
	ch.owner = cr
	ch.refs.Store(1)
	return ch, nil
}

// fill makes the next n bytes (at most readBufSize) buffered and
// contiguous at cur.buf[r:], reading as needed.
func (cr *chunkReader) fill(n int) error {
	if cr.buffered() >= n {
		return nil
	}
	if cr.cur == nil || len(cr.cur.buf)-cr.w < minChunkRead || cr.r+n > len(cr.cur.buf) {
		if err := cr.move(); err != nil {
			return err
		}
	}
	for cr.buffered() < n {
		k, err := cr.rd.Read(cr.cur.buf[cr.w:])
		cr.w += k
		if err != nil {
			if cr.buffered() >= n {
				return nil
			}
			if err == io.EOF && cr.buffered() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// move puts what is buffered at the start of a chunk: this one, if no
// block in it is still out, else a new one.
func (cr *chunkReader) move() error {
	if cr.cur != nil && cr.cur.refs.Load() == 1 {
		// Only we hold it, and only we add references.
		copy(cr.cur.buf, cr.cur.buf[cr.r:cr.w])
		cr.r, cr.w = 0, cr.w-cr.r
		return nil
	}
	ch, err := cr.newChunk()
	if err != nil {
		return err
	}
	if cr.cur != nil {
		copy(ch.buf, cr.cur.buf[cr.r:cr.w])
		cr.cur.release()
	}
	cr.r, cr.w = 0, cr.w-cr.r
	cr.cur = ch
	return nil
}

// uint32 consumes a big-endian length prefix.
func (cr *chunkReader) uint32() (uint32, error) {
	if err := cr.fill(4); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(cr.cur.buf[cr.r:])
	cr.r += 4
	return v, nil
}

// peekByte returns the next byte without consuming it.
func (cr *chunkReader) peekByte() (byte, error) {
	if err := cr.fill(1); err != nil {
		return 0, err
	}
	return cr.cur.buf[cr.r], nil
}

// take consumes the next n bytes (at most readBufSize) as a slice of the
// current chunk, which it returns with a reference for the caller.
func (cr *chunkReader) take(n int) ([]byte, *readChunk, error) {
	if err := cr.fill(n); err != nil {
		return nil, nil, err
	}
	b := cr.cur.buf[cr.r : cr.r+n : cr.r+n]
	cr.r += n
	cr.cur.refs.Add(1)
	return b, cr.cur, nil
}

// tooLongError is a message length over the limit.
type tooLongError struct{ n, max int64 }

func (e tooLongError) Error() string {
	return fmt.Sprintf("message of %d bytes exceeds the limit of %d", e.n, e.max)
}

// message consumes the next message and returns its payload: empty for a
// keep-alive; a piece message's as a slice of the current chunk, with a
// reference for the caller in chunk; any other's in memory of its own. A
// length over maxLen is a tooLongError, and nothing of the body is read.
func (cr *chunkReader) message(maxLen int64) (payload []byte, chunk *readChunk, err error) {
	n, err := cr.uint32()
	if err != nil {
		return nil, nil, err
	}
	if int64(n) > maxLen {
		return nil, nil, tooLongError{int64(n), maxLen}
	}
	if n == 0 {
		return []byte{}, nil, nil
	}
	t, err := cr.peekByte()
	if err != nil {
		return nil, nil, err
	}
	if n > 9 && n <= 9+wire.BlockSize && wire.MessageType(t) == wire.Piece {
		return cr.take(int(n))
	}
	payload = make([]byte, n)
	if err := cr.readFull(payload); err != nil {
		return nil, nil, err
	}
	return payload, nil, nil
}

// readFull consumes len(p) bytes into p: a short message through the
// chunk, a long one's unbuffered rest read straight into p.
func (cr *chunkReader) readFull(p []byte) error {
	if len(p) <= minChunkRead {
		if err := cr.fill(len(p)); err != nil {
			return err
		}
	}
	if cr.cur == nil {
		_, err := io.ReadFull(cr.rd, p)
		return err
	}
	k := copy(p, cr.cur.buf[cr.r:cr.w])
	cr.r += k
	if k == len(p) {
		return nil
	}
	_, err := io.ReadFull(cr.rd, p[k:])
	if err == io.EOF && k > 0 {
		err = io.ErrUnexpectedEOF
	}
	return err
}
