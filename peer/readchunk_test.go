package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"testing"

	"node/peer/wire"
)

// trickleReader returns at most a random few bytes a read, so messages
// straddle reads and chunks every which way.
type trickleReader struct {
	b   []byte
	rnd *rand.Rand
	max int
}

func (t *trickleReader) Read(p []byte) (int, error) {
	if len(t.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(t.b), 1+t.rnd.IntN(t.max))
	copy(p, t.b[:n])
	t.b = t.b[n:]
	return n, nil
}

// readMessage is readLoop's framing, without a connection.
func readMessage(cr *chunkReader) ([]byte, *readChunk, error) { return cr.message(1 << 30) }

// Whatever the reads' sizes, every message comes out whole and in order,
// blocks held back by the loop keep their bytes while the reader reads on,
// and the reader never has more than maxReadChunks chunks alive.
func TestChunkReaderFraming(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	var stream []byte
	var want [][]byte
	for i := range 400 {
		var m []byte
		switch i % 5 {
		case 0, 1, 2: // a block
			blk := make([]byte, wire.BlockSize-rnd.IntN(3)*100)
			for j := range blk {
				blk[j] = byte(rnd.Uint32())
			}
			m = (&wire.Message{Type: wire.Piece, Index: uint32(i), Begin: 0, Block: blk}).Append(nil)
		case 3: // a have
			m = (&wire.Message{Type: wire.Have, Index: uint32(i)}).Append(nil)
		case 4: // a long message, longer than a chunk
			m = (&wire.Message{Type: wire.Bitfield, Bitfield: bytes.Repeat([]byte{byte(i)}, readBufSize+rnd.IntN(5000))}).Append(nil)
		}
		stream = append(stream, m...)
		want = append(want, m[4:])
	}
	for _, maxRead := range []int{7, 1000, 40000, readBufSize} {
		rd := &trickleReader{b: stream, rnd: rnd, max: maxRead}
		cr := newChunkReader(rd, nil)
		type held struct {
			b     []byte
			chunk *readChunk
			i     int
		}
		var out []held
		for i := range want {
			b, ch, err := readMessage(cr)
			if err != nil {
				t.Fatalf("max read %d: message %d: %v", maxRead, i, err)
			}
			if a := cr.alive.Load(); a > maxReadChunks {
				t.Fatalf("max read %d: %d chunks alive, bound is maxReadChunks = %d", maxRead, a, maxReadChunks)
			}
			out = append(out, held{b, ch, i})
			// The loop works through what it was handed in its own time:
			// here, at random, and whenever the reader has all its
			// chunks (one more would make it wait), in a random order.
			if cr.alive.Load() >= maxReadChunks || rnd.IntN(4) == 0 {
				rnd.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
				for _, h := range out {
					if !bytes.Equal(h.b, want[h.i]) {
						t.Fatalf("max read %d: message %d changed before it was released", maxRead, h.i)
					}
					h.chunk.release()
				}
				out = out[:0]
			}
		}
		for _, h := range out {
			if !bytes.Equal(h.b, want[h.i]) {
				t.Fatalf("max read %d: message %d differs", maxRead, h.i)
			}
			h.chunk.release()
		}
		if _, _, err := readMessage(cr); !errors.Is(err, io.EOF) {
			t.Fatalf("max read %d: after the last message: %v, want EOF", maxRead, err)
		}
		cr.close()
		if a := cr.alive.Load(); a != 0 {
			t.Fatalf("max read %d: %d chunks alive after close", maxRead, a)
		}
	}
}

// A peer that puts one short piece message in every chunk's worth of
// junk pins a chunk per block: the reader waits at maxReadChunks, having
// read no further, and reads on once the loop releases one.
func TestChunkReaderPinnedBound(t *testing.T) {
	const blocks = 10
	var stream []byte
	for i := range blocks {
		stream = (&wire.Message{Type: wire.Piece, Index: uint32(i), Block: []byte{1, 2, 3}}).Append(stream)
		for range readBufSize / 4 {
			stream = append(stream, 0, 0, 0, 0) // keep-alives
		}
	}
	cr := newChunkReader(bytes.NewReader(stream), make(chan struct{}))
	waiting := make(chan int32, 1)
	cr.waiting = func() {
		select {
		case waiting <- cr.alive.Load():
		default:
		}
	}
	got := make(chan *readChunk, blocks)
	done := make(chan error, 1)
	go func() {
		for {
			_, ch, err := readMessage(cr)
			if err != nil {
				done <- err
				return
			}
			if ch != nil {
				got <- ch
			}
		}
	}()
	select {
	case a := <-waiting:
		if a != maxReadChunks {
			t.Fatalf("the reader waits with %d chunks alive, want maxReadChunks = %d", a, maxReadChunks)
		}
	case err := <-done:
		t.Fatalf("the reader read to the end (%v) holding %d chunks, never waiting", err, cr.alive.Load())
	}
	if len(got) != maxReadChunks {
		t.Fatalf("%d blocks read before the wait, want one per chunk: %d", len(got), maxReadChunks)
	}
	// Released, the blocks let it read to the end.
	n := 0
	for n < blocks {
		(<-got).release()
		n++
	}
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Fatalf("reader ended with %v, want EOF", err)
	}
	cr.close()
	if a := cr.alive.Load(); a != 0 {
		t.Fatalf("%d chunks alive at the end", a)
	}
}

// A message cut short by the peer's close, whether a block or a long
// message read past its chunk, ends the connection with that error and
// never reaches the loop half read.
func TestReadLoopTruncatedMessage(t *testing.T) {
	long := (&wire.Message{Type: wire.Bitfield, Bitfield: make([]byte, 40000)}).Append(nil)
	block := (&wire.Message{Type: wire.Piece, Index: 1, Block: make([]byte, wire.BlockSize)}).Append(nil)
	have := (&wire.Message{Type: wire.Have, Index: 7}).Append(nil)
	for _, tc := range []struct {
		name string
		sent []byte
	}{
		{"long message", append(slices.Clone(have), long[:100]...)},
		{"block", append(slices.Clone(have), block[:117]...)},
		{"block header", append(slices.Clone(have), block[:5]...)},
		{"length", append(slices.Clone(have), block[:2]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t, "127.0.85.2")
			if _, err := client.Write(tc.sent); err != nil {
				t.Fatal(err)
			}
			client.Close()
			c := newConn(server, wire.Handshake{}, false, wire.MaxMessageLen(1<<20))
			var got []wire.Message
			c.readLoop(func(_ *conn, ms []inMsg) bool {
				for _, im := range ms {
					got = append(got, im.m)
					im.chunk.release()
				}
				return true
			})
			if len(got) != 1 || got[0].Type != wire.Have {
				var types []wire.MessageType
				for _, m := range got {
					types = append(types, m.Type)
				}
				t.Errorf("delivered %v, want the have alone", types)
			}
			if !errors.Is(c.err, io.ErrUnexpectedEOF) {
				t.Errorf("closed with %v, want an unexpected EOF", c.err)
			}
		})
	}
}

// FuzzChunkReader frames arbitrary bytes, read in pieces of arbitrary
// sizes, as readLoop does and compares every message with a plain
// framing of the same bytes, while blocks are held back and released in
// the order the input chooses.
func FuzzChunkReader(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 1, 4, 0, 0, 0, 0})
	f.Add(append([]byte{200}, (&wire.Message{Type: wire.Piece, Index: 2, Begin: 16384, Block: bytes.Repeat([]byte{9}, 3000)}).Append(nil)...))
	f.Add(append([]byte{1}, (&wire.Message{Type: wire.Bitfield, Bitfield: make([]byte, 70000)}).Append(nil)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		const maxLen = 1 << 18
		maxRead, stream := 1+int(data[0])*int(data[0]), data[1:]
		var want [][]byte
		for rest := stream; len(rest) >= 4; {
			n := int(binary.BigEndian.Uint32(rest))
			if n > maxLen || len(rest)-4 < n {
				break
			}
			want = append(want, rest[4:4+n])
			rest = rest[4+n:]
		}
		closed := make(chan struct{})
		close(closed) // a wait for a chunk fails rather than hangs
		cr := newChunkReader(&trickleReader{b: stream, rnd: rand.New(rand.NewPCG(uint64(len(data)), 1)), max: maxRead}, closed)
		defer cr.close()
		type held struct {
			b     []byte
			chunk *readChunk
			i     int
		}
		var out []held
		check := func() {
			for _, h := range out {
				if !bytes.Equal(h.b, want[h.i]) {
					t.Fatalf("message %d changed while held", h.i)
				}
				h.chunk.release()
			}
			out = out[:0]
		}
		defer check()
		for i := 0; ; i++ {
			b, ch, err := cr.message(maxLen)
			if err != nil {
				if errors.Is(err, context.Canceled) {
					t.Fatalf("the reader would wait for a chunk with %d alive", cr.alive.Load())
				}
				if i < len(want) {
					t.Fatalf("message %d of %d: %v", i, len(want), err)
				}
				return
			}
			if i >= len(want) {
				t.Fatalf("message %d read, only %d in the stream", i, len(want))
			}
			out = append(out, held{b, ch, i})
			if cr.alive.Load() >= maxReadChunks || data[i%len(data)]&1 == 0 {
				check()
			}
		}
	})
}

// tcpPair returns the two ends of a TCP connection on ip, closed when the
// test ends.
func tcpPair(t *testing.T, ip string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if client, err = net.Dial("tcp4", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
