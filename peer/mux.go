package peer

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/mse"
	"go.uber.org/zap"

	"node/metadata"
	"node/peer/wire"
)

// Bounds of a Mux. Its handshakes are bounded per IPv4 address or IPv6
// /64 by maxConnsPerIP, as a torrent's are, per IPv4 /24 or IPv6 /48 by
// maxHandshakesPerNet, and each by handshakeTimeout over sniffing, MSE
// and reading the peer's handshake, and by firstBytesTimeout until the
// peer sends something. A full budget evicts rather than refuses (see
// muxBudget).
const (
	// maxMuxHandshakes bounds the incoming connections a Mux is reading
	// the MSE and BitTorrent handshakes of, per transport (uTP has its
	// own budget, see handshakesOf): each is a goroutine and the MSE
	// library's buffers for up to handshakeTimeout. It serves every
	// torrent of the process where a Torrent's own listener serves one
	// (maxPendingHandshakes), and an honest handshake takes a round trip
	// or two: 128 in flight is thousands of peers a second.
	maxMuxHandshakes = 128
	// muxAcceptQueue bounds the connections a Mux has routed to one
	// torrent that its acceptLoop has not taken yet. That loop takes them
	// at once and answers each on its own goroutine, so the queue fills
	// only when the torrent's own handshake budget is spent or it is
	// stuck; beyond it connections for that torrent are closed, and the
	// other torrents are not held up.
	muxAcceptQueue = 16
)

// MuxConfig configures a Mux.
type MuxConfig struct {
	// Listeners are the TCP and uTP listeners; the Mux closes them. The
	// first gives the address (and port) every torrent announces.
	Listeners []net.Listener
	// Encryption is the policy for incoming connections: a plaintext
	// handshake under EncryptRequire, or an MSE one under EncryptOff, is
	// refused before its info-hash is known. A torrent's own
	// Config.Encryption applies after it.
	Encryption Encryption
	Logger     *zap.Logger

	firstBytes time.Duration // 0: firstBytesTimeout; tests that hold silent connections longer
}

// Mux is one set of listeners for many torrents: it sniffs MSE on each
// incoming connection (every registered info-hash a candidate secret
// key), reads the peer's BitTorrent handshake to learn the info-hash,
// and hands the connection to that torrent's virtual listener (see
// Listener). A connection for an info-hash no torrent has is closed.
type Mux struct {
	cfg    MuxConfig
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	hs, hsUTP muxBudget // incoming handshakes in progress, by transport

	mu     sync.Mutex
	regs   map[metadata.InfoHash]*muxListener
	closed bool
	// ihs is regs' keys for MSE's secret keys, made when an MSE
	// initiator first needs them after a change and shared, never
	// written, by the handshakes: not a copy per connection.
	ihs []metadata.InfoHash

	stats muxCounters
}

type muxCounters struct {
	accepted, routed, overBudget, evicted, failed, unknown, dropped atomic.Int64
}

// MuxStats counts what a Mux did with the connections it accepted.
type MuxStats struct {
	Accepted int64 // connections accepted on the real listeners
	Routed   int64 // handed to a torrent's virtual listener
	// OverBudget were closed at once: maxMuxHandshakes, or
	// maxHandshakesPerNet from one network, or maxConnsPerIP from one
	// address, were in progress, and none of them could be evicted.
	OverBudget int64
	// Evicted were closed during their handshake to make room for a
	// newcomer (see muxBudget); they are counted in Failed too.
	Evicted int64
	// Failed: the sniff, MSE or BitTorrent handshake failed or timed out,
	// or was refused by the Mux's Encryption.
	Failed int64
	// Unknown named an info-hash no torrent is registered for (or used
	// one as MSE's secret key and named another in its handshake).
	Unknown int64
	// Dropped were for a torrent whose queue (muxAcceptQueue) was full.
	Dropped int64
}

// NewMux starts accepting on cfg.Listeners.
func NewMux(cfg MuxConfig) *Mux {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	m := &Mux{
		cfg: cfg, log: cfg.Logger,
		hs:    muxBudget{max: maxMuxHandshakes},
		hsUTP: muxBudget{max: maxMuxHandshakes},
		regs:  make(map[metadata.InfoHash]*muxListener),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for _, ln := range cfg.Listeners {
		if ln == nil {
			continue
		}
		m.wg.Add(1)
		go m.acceptLoop(ln)
	}
	return m
}

// Listener registers ih and returns its virtual listener, for
// Config.Listener: it accepts the connections for ih, their MSE done and
// their handshake read (a torrent's acceptLoop answers it), and its Addr
// is the first real listener's. Closing it (the torrent does when it
// stops) unregisters ih, so a torrent can be stopped and run again.
func (m *Mux) Listener(ih metadata.InfoHash) (net.Listener, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, net.ErrClosed
	}
	if m.regs[ih] != nil {
		return nil, fmt.Errorf("peer: info-hash %v already has a listener", ih)
	}
	l := &muxListener{m: m, ih: ih, ch: make(chan *muxConn, muxAcceptQueue), done: make(chan struct{})}
	m.regs[ih] = l
	m.ihs = nil
	return l, nil
}

// Close closes the real listeners and every virtual one, and waits for
// the handshakes in progress, which it cuts short.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	ls := make([]*muxListener, 0, len(m.regs))
	for _, l := range m.regs {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	m.cancel()
	var errs []error
	for _, ln := range m.cfg.Listeners {
		if ln != nil {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	for _, l := range ls {
		l.Close()
	}
	m.wg.Wait()
	return errors.Join(errs...)
}

// Stats returns the Mux's counters.
func (m *Mux) Stats() MuxStats {
	return MuxStats{
		Accepted: m.stats.accepted.Load(), Routed: m.stats.routed.Load(),
		OverBudget: m.stats.overBudget.Load(), Evicted: m.stats.evicted.Load(), Failed: m.stats.failed.Load(),
		Unknown: m.stats.unknown.Load(), Dropped: m.stats.dropped.Load(),
	}
}

// addr is the address every virtual listener gives.
func (m *Mux) addr() net.Addr {
	for _, ln := range m.cfg.Listeners {
		if ln != nil {
			return ln.Addr()
		}
	}
	return &net.TCPAddr{}
}

func (m *Mux) infoHashes() []metadata.InfoHash {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ihs == nil {
		m.ihs = make([]metadata.InfoHash, 0, len(m.regs))
		for ih := range m.regs {
			m.ihs = append(m.ihs, ih)
		}
	}
	return m.ihs
}

func (m *Mux) acceptLoop(ln net.Listener) {
	defer m.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if m.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary errors (out of file descriptors), as net/http
			// backs off.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-m.ctx.Done():
				return
			}
			continue
		}
		m.stats.accepted.Add(1)
		budget := &m.hs
		if transportOf(nc) == TransportUTP {
			budget = &m.hsUTP
		}
		e, victim, ok := budget.admit(nc, addrOf(nc.RemoteAddr()).Addr(), time.Now())
		if victim != nil {
			m.stats.evicted.Add(1)
			victim.nc.Close()
		}
		if !ok {
			m.stats.overBudget.Add(1)
			nc.Close()
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer budget.done(e)
			silent := time.AfterFunc(cmp.Or(m.cfg.firstBytes, firstBytesTimeout), func() {
				if e.bytes.Load() == 0 {
					nc.Close()
				}
			})
			err := m.route(&meteredConn{Conn: nc, e: e}, e)
			silent.Stop()
			if err != nil {
				nc.Close()
				m.log.Debug("incoming connection", zap.Stringer("peer", nc.RemoteAddr()), zap.Error(err))
			}
		}()
	}
}

var (
	errUnknownTorrent = errors.New("no torrent for this info-hash")
	errSkeyMismatch   = errors.New("MSE secret key and handshake name different torrents")
	errQueueFullMux   = errors.New("torrent's accept queue full")
	errEvicted        = errors.New("evicted to make room for another handshake")
)

// route runs MSE and reads the handshake of nc, then queues it for its
// torrent unless e (nil: none) was evicted meanwhile. One deadline
// (handshakeTimeout) covers it all.
func (m *Mux) route(nc net.Conn, e *hsEntry) error {
	ctx, cancel := context.WithTimeout(m.ctx, handshakeTimeout)
	defer cancel()
	cc, crypto, skey, err := receiveCrypto(ctx, nc, m.cfg.Encryption, m.infoHashes)
	if err != nil {
		m.stats.failed.Add(1)
		return err
	}
	undo := handshakeDeadline(ctx, nc)
	buf := make([]byte, wire.HandshakeLen)
	_, err = io.ReadFull(cc, buf)
	undo()
	if err != nil {
		m.stats.failed.Add(1)
		return fmt.Errorf("handshake: %w", err)
	}
	h, err := wire.ParseHandshake(buf)
	if err != nil {
		m.stats.failed.Add(1)
		return err
	}
	if skey != nil && !bytes.Equal(skey, h.InfoHash[:]) {
		// libtorrent refuses it too: the initiator proved it knows one
		// torrent and asks for another.
		m.stats.unknown.Add(1)
		return errSkeyMismatch
	}
	if !e.claim() {
		m.stats.failed.Add(1)
		return errEvicted
	}
	mc := &muxConn{Conn: cc, crypto: crypto, pending: buf, queued: time.Now()}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.regs[h.InfoHash]
	if l == nil {
		m.stats.unknown.Add(1)
		return errUnknownTorrent
	}
	select {
	case l.ch <- mc:
		m.stats.routed.Add(1)
		return nil
	default:
		m.stats.dropped.Add(1)
		return errQueueFullMux
	}
}

// muxListener is the virtual listener of one torrent behind a Mux.
type muxListener struct {
	m    *Mux
	ih   metadata.InfoHash
	ch   chan *muxConn
	done chan struct{}
	once sync.Once
}

func (l *muxListener) Accept() (net.Conn, error) {
	for {
		select {
		case <-l.done:
			return nil, net.ErrClosed
		default:
		}
		select {
		case c := <-l.ch:
			if time.Since(c.queued) >= handshakeTimeout {
				// Its peer has given up waiting for our answer.
				c.Close()
				continue
			}
			return c, nil
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
}

// Close unregisters the info-hash and closes the connections queued for
// it.
func (l *muxListener) Close() error {
	l.once.Do(func() {
		l.m.mu.Lock()
		if l.m.regs[l.ih] == l {
			delete(l.m.regs, l.ih)
			l.m.ihs = nil
		}
		l.m.mu.Unlock()
		close(l.done)
		// route queues under the Mux's lock, and found ih gone: nothing
		// more comes in.
		for {
			select {
			case c := <-l.ch:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *muxListener) Addr() net.Addr { return l.m.addr() }

// muxConn is a connection a Mux routed: MSE is done (crypto is what it
// selected, 0 for a plaintext handshake) and pending is the peer's
// BitTorrent handshake, which Read gives back first so that the torrent's
// handshake reads it as if from the wire. The torrent's acceptLoop does
// not sniff it again; its Encryption is checked with admits.
type muxConn struct {
	net.Conn
	crypto  mse.CryptoMethod
	pending []byte
	queued  time.Time
}

func (c *muxConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// stream is the connection to read and write once the handshake is
// done, without the layers that only gave back bytes already read.
func (c *muxConn) stream() net.Conn {
	if len(c.pending) > 0 {
		return c
	}
	nc := c.Conn
	if pc, ok := nc.(*prefixConn); ok && len(pc.prefix) == 0 {
		nc = pc.Conn
	}
	if mc, ok := nc.(*meteredConn); ok {
		nc = mc.Conn
	}
	return nc
}
