package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/mse"

	"node/peer/wire"
)

// Timeouts of a connection.
const (
	handshakeTimeout = 10 * time.Second
	// readTimeout is how long a peer may stay silent: BEP 3 peers send a
	// keep-alive every two minutes at the latest.
	readTimeout    = 3 * time.Minute
	keepAliveEvery = 90 * time.Second
	// earlyKeepAlive is when a keep-alive follows our first messages if
	// nothing else has: Transmission 3.00 leaves bytes that arrive in one
	// read with our handshake unparsed until more data comes, so over
	// uTP a seed's bitfield and extended handshake waited for the
	// keep-alive 90 s later, and with them its metadata.
	earlyKeepAlive = 2 * time.Second
	// earlyWindow is how long after the writer starts its batches count
	// as first messages: the bitfield and the extended handshake can
	// leave in separate batches (on a loaded machine they did), and the
	// last of them must be followed by the early keep-alive too.
	earlyWindow  = 10 * time.Second
	writeTimeout = 30 * time.Second
	// outQueueLen is the send queue's slots: room for twice ourReqq
	// served blocks and the control messages between them, so that the
	// byte bound below is what drops a peer that does not read. Its
	// slots are allocated with the connection: 4096 × 48 bytes.
	outQueueLen = 4096
)

// maxQueueBytes bounds a connection's send queue in bytes, blocks we
// serve counted at their length: a peer that lets this much pile up is
// not reading, and is dropped. It is twice what the reqq we announce lets
// a peer ask of us (62.5 MiB at 2000). It is not what the queue holds in
// memory: a served block is read from storage only when the writer
// writes it, so until then it pins a blockRead (32 bytes) and a slot;
// the queue's memory is its slots (outQueueLen), those blockReads and
// the encoded control messages, all bounded by outQueueLen.
const maxQueueBytes = 2 * ourReqq * (13 + wire.BlockSize)

var errQueueFull = errors.New("peer is not reading: send queue full")

// conn is one peer connection. Its reader goroutine frames and decodes
// messages and hands them to the torrent's loop; its writer goroutine
// drains the send queue. Everything else about the peer (choke state,
// bitfield, requests) lives in the loop's peerState.
type conn struct {
	nc       net.Conn
	addr     netip.AddrPort
	hs       wire.Handshake // the remote side's
	outgoing bool
	// transport is TransportTCP or TransportUTP.
	transport string
	// crypto is the stream MSE set up (see mse.go): 0 for a plaintext
	// handshake, mse.CryptoMethodPlaintext after header obfuscation
	// alone, mse.CryptoMethodRC4 for an encrypted stream.
	crypto mse.CryptoMethod

	maxLen atomic.Int64 // longest payload accepted; grows once metadata is known
	out    chan outMsg
	closed chan struct{}
	once   sync.Once
	err    error

	// queued is the bytes in out (see maxQueueBytes); metaOut the
	// ut_metadata answers among them (see maxMetadataAnswers). The loop
	// adds, the writer takes away.
	queued  atomic.Int64
	metaOut atomic.Int32

	// Counters read by the loop for rates and the choker.
	down, up atomic.Int64 // payload bytes of piece messages

	// The torrent's rate limits and those it shares with other torrents,
	// set before the reader and writer start and never changed; see
	// ratelimit.go.
	upLimit, downLimit limits
	// inbound is the torrent's budget of bytes read but not yet handled
	// (see inbound.go), set like the limits.
	inbound *byteBudget
}

// outMsg is an encoded message waiting for the writer; piece is its block
// length for a piece message (what the upload limit counts), else 0. A
// piece message we serve is queued as read (b nil): the writer reads the
// block from storage itself, so the loop never waits on the disk and the
// block is copied once, from the page cache into the send buffer.
type outMsg struct {
	b     []byte
	piece int
	read  *blockRead
	meta  bool // a ut_metadata answer, counted in conn.metaOut
}

// size is what om counts against maxQueueBytes.
func (om outMsg) size() int64 {
	if om.read != nil {
		return 13 + int64(om.piece)
	}
	return int64(len(om.b))
}

// blockRead is a block to read from storage and send as a piece message.
type blockRead struct {
	st           blockReader
	index, begin uint32
	fail         func(error) // reading failed: the torrent cannot serve
}

// blockReader is what the writer needs of storage.Storage.
type blockReader interface {
	ReadBlock(piece int, begin int64, p []byte) error
}

func newConn(nc net.Conn, hs wire.Handshake, outgoing bool, maxLen int) *conn {
	ap := addrOf(nc.RemoteAddr())
	c := &conn{
		nc: nc, addr: ap, hs: hs, outgoing: outgoing, transport: transportOf(nc),
		out:    make(chan outMsg, outQueueLen),
		closed: make(chan struct{}),
	}
	c.maxLen.Store(int64(maxLen))
	return c
}

func addrOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.UDPAddr: // uTP
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// close ends the connection once, recording why.
func (c *conn) close(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.closed)
		c.nc.Close()
	})
}

// send queues an encoded message without blocking: a peer that lets its
// queue fill is not reading, and is dropped rather than stalling the loop.
func (c *conn) send(m *wire.Message) {
	select {
	case <-c.closed:
		return
	default:
	}
	om := outMsg{b: m.Append(nil)}
	if m.Type == wire.Piece && !m.KeepAlive {
		om.piece = len(m.Block)
	}
	c.queue(om)
}

// sendMetadata queues a ut_metadata answer, counted in metaOut until the
// writer has taken it.
func (c *conn) sendMetadata(m *wire.Message) {
	select {
	case <-c.closed:
		return
	default:
	}
	c.metaOut.Add(1)
	c.queue(outMsg{b: m.Append(nil), meta: true})
}

// queue hands om to the writer without blocking (see send), within
// maxQueueBytes and outQueueLen.
func (c *conn) queue(om outMsg) {
	select {
	case <-c.closed:
		return
	default:
	}
	n := om.size()
	if c.queued.Add(n) > maxQueueBytes {
		c.queued.Add(-n)
		c.close(errQueueFull)
		return
	}
	select {
	case c.out <- om:
	default:
		c.queued.Add(-n)
		c.close(errQueueFull)
	}
}

// dequeued accounts for om, taken from the queue by the writer.
func (c *conn) dequeued(om outMsg) {
	c.queued.Add(-om.size())
	if om.meta {
		c.metaOut.Add(-1)
	}
}

// deadlineWriter gives each write to the socket writeTimeout of its own.
// A deadline set once per batch ran out under a peer that reads slowly
// but keeps our queue full, so that a batch never ends: libtorrent over
// uTP at 5 MiB/s, with 2000 requests out, was dropped 30 s into every
// transfer. A write to the socket is writeBufSize at full speed, so
// this costs one timer update per writeBufSize.
//
// A write of writeBufSize is four times what it was when writes were at
// most 64 KiB, so a write gets writeTimeout for every 64 KiB of it: the
// slowest reader kept is slowestReader, as before, not four times that.
type deadlineWriter struct{ nc net.Conn }

// slowestReader is the slowest a peer may take what we write to it, in
// bytes per second, before the write times out: 64 KiB per writeTimeout.
const slowestReader = int(64 << 10 / (writeTimeout / time.Second))

func (w deadlineWriter) Write(b []byte) (int, error) {
	_ = w.nc.SetWriteDeadline(time.Now().Add(writeDeadline(len(b))))
	return w.nc.Write(b)
}

// writeDeadline is the time a write of n bytes gets.
func writeDeadline(n int) time.Duration {
	return max(writeTimeout, time.Duration(n)*time.Second/time.Duration(slowestReader))
}

// writeBufSize is the most one write to the socket carries (a message
// larger than it leaves alone, whole): served blocks are read from
// storage straight into it, behind their headers, so a block is copied
// once in user space (from the page cache), and sixteen piece messages
// leave in one write, one wake-up of the peer's reader where a 64 KiB
// buffer cost four. It grows to this size only on a connection that
// serves blocks, and is given back when it has nothing more to send
// (see keptBatch): a leecher's writer holds its requests alone. Against
// 64 KiB and a pooled copy per block, our seeder's CPU for a 1 GiB
// loopback fetch fell by a third; 1 MiB bought nothing more.
const writeBufSize = 16 * (13 + wire.BlockSize)

// writeLoop drains the queue, batching whatever is queued into one write
// (of at most writeBufSize bytes), and sends keep-alives when idle. Under
// an upload limit it takes tokens before each piece message (see
// ratelimit.go).
func (c *conn) writeLoop() {
	w := batchWriter{w: deadlineWriter{c.nc}}
	ka := time.NewTimer(keepAliveEvery)
	defer ka.Stop()
	start := time.Now()
	keepAlive := outMsg{b: (&wire.Message{KeepAlive: true}).Append(nil)}
	// write adds m to the batch, writing the batch out first when m
	// does not fit.
	write := func(m outMsg) error {
		if m.piece > 0 && c.upLimit.on() {
			// Flush the batch before sleeping: what is queued ahead
			// of this block (a have, a choke) should not wait for it.
			if err := c.upLimit.wait(m.piece, c.closed, w.flush); err != nil {
				return err
			}
		}
		if m.read != nil {
			return w.block(m.read, m.piece)
		}
		return w.write(m.b)
	}
	for {
		var m outMsg
		select {
		case m = <-c.out:
			c.dequeued(m)
		case <-ka.C:
			m = keepAlive
		case <-c.closed:
			return
		}
		if err := write(m); err != nil {
			c.close(fmt.Errorf("write: %w", err))
			return
		}
	drain:
		for {
			select {
			case m = <-c.out:
				c.dequeued(m)
				if err := write(m); err != nil {
					c.close(fmt.Errorf("write: %w", err))
					return
				}
			default:
				break drain
			}
		}
		if err := w.flush(); err != nil {
			c.close(fmt.Errorf("write: %w", err))
			return
		}
		w.idle()
		if time.Since(start) < earlyWindow {
			ka.Reset(earlyKeepAlive)
		} else {
			ka.Reset(keepAliveEvery)
		}
	}
}

// sendBlock queues piece message for a block of ours, read by the writer.
func (c *conn) sendBlock(r *blockRead, length int) {
	c.queue(outMsg{piece: length, read: r})
}

// batchWriter gathers messages into one buffer of at most writeBufSize
// bytes (more only for a single larger message) and writes it out whole.
type batchWriter struct {
	w   io.Writer
	buf []byte
}

// keptBatch is the most of a write batch a connection keeps while it has
// nothing to send: a leecher's batch of requests fits. A larger batch
// (one that carries blocks) goes back to batchBufs once written with
// nothing more queued, so that the connections of a seeding daemon,
// mostly idle, do not each pin writeBufSize for as long as they last.
const keptBatch = 4 << 10

// batchBufs are the write batches of connections that have blocks to
// send; see keptBatch.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}

// reserve returns the next n bytes of the batch, writing the batch out
// first if they do not fit in writeBufSize.
func (b *batchWriter) reserve(n int) ([]byte, error) {
	if len(b.buf) > 0 && len(b.buf)+n > writeBufSize {
		if err := b.flush(); err != nil {
			return nil, err
		}
	}
	if len(b.buf)+n > cap(b.buf) {
		var nb []byte
		switch need := len(b.buf) + n; {
		case need <= keptBatch:
			// Doubling: a connection that only asks keeps a small
			// buffer.
			nb = make([]byte, len(b.buf), min(max(need, 2*cap(b.buf)), keptBatch))
		case need <= writeBufSize:
			nb = (*batchBufs.Get().(*[]byte))[:len(b.buf)]
		default:
			nb = make([]byte, len(b.buf), need)
		}
		copy(nb, b.buf)
		b.release()
		b.buf = nb
	}
	b.buf = b.buf[:len(b.buf)+n]
	return b.buf[len(b.buf)-n:], nil
}

func (b *batchWriter) write(p []byte) error {
	dst, err := b.reserve(len(p))
	if err != nil {
		return err
	}
	copy(dst, p)
	return nil
}

// block reads a block from storage into the batch, behind its message
// header.
func (b *batchWriter) block(r *blockRead, length int) error {
	dst, err := b.reserve(13 + length)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(dst, uint32(9+length))
	dst[4] = byte(wire.Piece)
	binary.BigEndian.PutUint32(dst[5:], r.index)
	binary.BigEndian.PutUint32(dst[9:], r.begin)
	if err := r.st.ReadBlock(int(r.index), int64(r.begin), dst[13:]); err != nil {
		b.buf = b.buf[:len(b.buf)-13-length]
		r.fail(fmt.Errorf("reading piece %d: %w", r.index, err))
		return err
	}
	return nil
}

// idle gives back a batch larger than keptBatch: the writer has nothing
// more to send for now.
func (b *batchWriter) idle() {
	if cap(b.buf) > keptBatch {
		b.release()
		b.buf = nil
	}
}

// release hands a pooled buffer back to batchBufs (b.buf is then unused).
func (b *batchWriter) release() {
	if cap(b.buf) == writeBufSize {
		buf := b.buf[:0]
		batchBufs.Put(&buf)
	}
}

// flush writes the batch out.
func (b *batchWriter) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// inMsg is one message from the reader. A piece message's block is a
// slice of the reader's chunk (see readchunk.go), which the loop releases
// once it has copied the block out.
type inMsg struct {
	m     wire.Message
	chunk *readChunk
	cost  int64 // taken from the inbound budget; the loop gives it back
}

const (
	// readBufSize holds several blocks, so one read syscall usually
	// brings in more than one message.
	readBufSize = 128 << 10
	// maxBatch caps the messages handed to the loop at once.
	maxBatch = 32
	// deadlineEvery is how often the read deadline is pushed forward:
	// per message it is measurable work for nothing.
	deadlineEvery = time.Second
)

// readLoop reads messages until the connection fails, handing them to
// deliver in batches: whatever complete messages are already buffered go
// together, so a fast peer costs one hand-over per batch, not per block.
// The length is checked against maxLen before anything is allocated, and
// every read has a deadline. Under a download limit it takes tokens for
// each piece message before delivering it, one message at a time. Each
// message read takes its size from the inbound budget, waiting for room
// when it is spent (see inbound.go).
func (c *conn) readLoop(deliver func(*conn, []inMsg) bool) {
	cr := newChunkReader(c.nc, c.closed)
	var deadlineSet time.Time
	// A wait for a chunk may outlast what is left of the deadline: it is
	// ours, not the peer's.
	cr.waited = func() {
		deadlineSet = time.Now()
		_ = c.nc.SetReadDeadline(deadlineSet.Add(readTimeout))
	}
	var batch []inMsg
	var held int64 // budget taken for batch
	defer func() {
		for _, im := range batch {
			im.chunk.release()
		}
		c.inbound.release(held)
		cr.close()
	}()
	handOver := func() bool {
		b, cost := batch, held
		batch, held = nil, 0 // the loop owns b and its bytes now
		if !deliver(c, b) {
			c.inbound.release(cost)
			return false
		}
		return true
	}
	for {
		if len(batch) > 0 && (len(batch) >= maxBatch || c.downLimit.on() || !cr.messageBuffered()) {
			if !handOver() {
				return
			}
		}
		if now := time.Now(); now.Sub(deadlineSet) >= deadlineEvery {
			_ = c.nc.SetReadDeadline(now.Add(readTimeout))
			deadlineSet = now
		}
		payload, chunk, err := cr.message(c.maxLen.Load())
		if err != nil {
			if !errors.As(err, new(tooLongError)) {
				err = fmt.Errorf("read: %w", err)
			}
			c.close(err)
			return
		}
		m, err := wire.ParseMessage(payload)
		if errors.Is(err, wire.ErrUnknownMessage) {
			chunk.release()
			continue // BEP 3: ignore messages we do not know
		}
		if err != nil {
			chunk.release()
			c.close(fmt.Errorf("bad message: %w", err))
			return
		}
		if m.KeepAlive {
			continue
		}
		if m.Type == wire.Piece && c.downLimit.on() {
			// Holding this goroutine back holds the peer back: our
			// socket buffer fills and TCP flow control slows it down.
			if err := c.downLimit.wait(len(m.Block), c.closed, nil); err != nil {
				chunk.release()
				c.close(err)
				return
			}
		}
		cost := int64(len(payload)) + inMsgCost
		if !c.inbound.tryAcquire(cost) {
			// The loop makes room only by handling what we hand it, so
			// what we hold goes first.
			if len(batch) > 0 && !handOver() {
				chunk.release()
				return
			}
			if !c.inbound.acquire(cost, c.closed) {
				chunk.release()
				c.close(context.Canceled)
				return
			}
		}
		batch = append(batch, inMsg{m: m, chunk: chunk, cost: cost})
		held += cost
	}
}

// handshake runs the BEP 3 handshake on nc. An outgoing connection sends
// first; an incoming one reads first so that check can refuse an unknown
// info-hash before we say anything.
func handshake(ctx context.Context, nc net.Conn, ours wire.Handshake, outgoing bool, check func(wire.Handshake) error) (wire.Handshake, error) {
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	defer nc.SetDeadline(time.Time{})
	// A shutdown must not wait out the deadline of a silent peer.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	var buf [wire.HandshakeLen]byte
	if outgoing {
		if _, err := nc.Write(ours.Append(nil)); err != nil {
			return wire.Handshake{}, err
		}
	}
	if _, err := io.ReadFull(nc, buf[:]); err != nil {
		return wire.Handshake{}, fmt.Errorf("handshake: %w", err)
	}
	theirs, err := wire.ParseHandshake(buf[:])
	if err != nil {
		return wire.Handshake{}, err
	}
	if err := check(theirs); err != nil {
		if !outgoing && errors.Is(err, errSelf) {
			// Our own dial, perhaps through a NAT or to a wildcard
			// listener: it learns so from our peer ID, and remembers
			// the address (see selfDialled).
			_, _ = nc.Write(ours.Append(nil))
		}
		return wire.Handshake{}, err
	}
	if !outgoing {
		if _, err := nc.Write(ours.Append(nil)); err != nil {
			return wire.Handshake{}, err
		}
	}
	return theirs, nil
}
