package krpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultMaxPacket   = 4096 // KRPC messages fit one MTU; anything larger is abuse
	DefaultMaxInflight = 4096
	// maxInflight bounds the transaction table whatever Config says.
	maxInflight = 1 << 15
	// TxIDLen is the length of our transaction IDs. They are random, so
	// that a node that sees our queries to it cannot predict those to
	// others and forge their answers from a spoofed address: 4 bytes make
	// a guess right once in 2^32, where 2 (libtorrent's) would be right
	// once in 2^16. Other clients echo any "t" (we echo up to
	// MaxTransactionIDLen bytes).
	TxIDLen = 4
)

// Errors a Query returns besides a remote *Error.
var (
	ErrTimeout         = errors.New("krpc: query timed out")
	ErrClosed          = errors.New("krpc: transport closed")
	ErrTooManyInflight = errors.New("krpc: too many queries in flight")
)

// Handler answers an incoming query from a node at from. It returns the
// message to send back (R or E set; T, Y and V are filled in by the
// Transport), or nil to send nothing. It runs on the Transport's single
// reader goroutine, so it must not block, and it is never called again
// before the message it returned has been encoded: a Handler may return
// storage it reuses. q is the Handler's to keep, unless Config.BorrowQuery
// says otherwise.
type Handler func(from netip.AddrPort, q *Msg) *Msg

// Config configures a Transport. Only Conn is required.
type Config struct {
	// Conn is the UDP socket. The Transport owns it from New on and
	// closes it in Close.
	Conn net.PacketConn
	// Handler answers incoming queries; nil ignores them (a client-only
	// transport).
	Handler Handler
	// BorrowQuery lends each query to Handler instead of giving it: q and
	// everything it refers to, strings included, live in memory the
	// Transport reuses for the next datagram, so Handler must copy what it
	// keeps. In exchange a query in canonical form is decoded without
	// allocating.
	BorrowQuery bool
	// Timeout bounds each query; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxPacket is the largest datagram accepted; larger ones are dropped
	// and counted. 0 means DefaultMaxPacket.
	MaxPacket int
	// MaxInflight bounds outstanding queries, and so the transaction table.
	MaxInflight int
	// ReadOnly marks every outgoing query with ro=1 (BEP 43).
	ReadOnly bool
	// Version is sent as "v" in every message; empty sends none.
	Version string
	Logger  *zap.Logger

	// Abuse limits (see the package doc for the order of checks). The
	// rate limits are off when zero; the dht package sets the Default*
	// values for a public node.

	// RatePerIP is the packets per second accepted from one source (an
	// IPv4 address or an IPv6 /64), a token bucket of BurstPerIP. Every
	// datagram counts — queries, garbage, stray replies — except the reply
	// to one of our queries: the first response or error whose transaction
	// ID is one we have outstanding to exactly its source address, IP and
	// port, which passes even a block.
	// 0: no per-source limit and no blocking (DefaultRatePerIP for a
	// public node).
	RatePerIP float64
	// BurstPerIP is the bucket size; 0 means 2 × RatePerIP
	// (DefaultBurstPerIP).
	BurstPerIP int
	// MaxTrackedIPs bounds the sources whose buckets are kept (an LRU);
	// 0 means DefaultMaxTrackedIPs.
	MaxTrackedIPs int
	// BlockFor is how long a source that abuses its rate limit (BlockFactor
	// × BurstPerIP drops within BlockWindow) has all its datagrams dropped
	// unread. 0 means DefaultBlockFor; negative never blocks.
	BlockFor time.Duration
	// MaxBlockedIPs bounds the block list (an LRU); 0 means
	// DefaultMaxBlockedIPs.
	MaxBlockedIPs int
	// SendRate is the global budget of datagrams sent per second, a token
	// bucket of SendBurst. Answers over budget are dropped and counted;
	// our own queries wait for a token. 0: unlimited (DefaultSendRate for
	// a public node).
	SendRate float64
	// SendBurst is the send bucket size; 0 means SendRate/10
	// (DefaultSendBurst).
	SendBurst int
	// SendLimiter, if set, is the send budget instead of one made from
	// SendRate and SendBurst: Transports that share it share one budget
	// (a dual-stack node's two sockets). See NewSendLimiter.
	SendLimiter *rate.Limiter
	// MaxAmplification bounds an answer (error 203 included) to this many
	// times the size of the query it answers, or AmplificationAllowance
	// bytes if that is more; a bigger answer is dropped and counted, not
	// trimmed. 0: unbounded (DefaultMaxAmplification for a public node).
	MaxAmplification int
	// Now is the clock the limits run on; nil means time.Now. Tests inject
	// one.
	Now func() time.Time
}

// Stats are cumulative counters since the Transport started.
type Stats struct {
	PacketsIn, PacketsOut   uint64
	QueriesIn, QueriesOut   uint64
	ResponsesIn, ErrorsIn   uint64 // replies matched to our queries
	Timeouts                uint64
	Oversized, Malformed    uint64 // dropped on arrival
	Unmatched               uint64 // replies to no query of ours, or from the wrong address
	Answered203, SendErrors uint64

	RateLimited   uint64 // dropped unparsed: over the source's rate
	Blocked       uint64 // dropped unparsed: the source is blocked
	BlockedIPs    uint64 // sources blocked now (a gauge, not cumulative)
	SendDropped   uint64 // answers dropped for want of send budget
	Amplification uint64 // answers dropped as too big for their query

	// QueriesIn and QueriesOut again, by method.
	QueriesInByMethod, QueriesOutByMethod ByMethod
}

// AddrPortConn is a PacketConn that also reads and writes with netip
// addresses, which need no allocation per datagram. A Transport uses these
// calls when its Conn has them, as it does with a *net.UDPConn's
// ReadFromUDPAddrPort and WriteToUDPAddrPort; in-memory conns for tests
// and benchmarks implement it to take the same path as a socket.
type AddrPortConn interface {
	net.PacketConn
	ReadFromAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// udpConn gives a *net.UDPConn the AddrPortConn calls.
type udpConn struct{ *net.UDPConn }

func (c udpConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

func (c udpConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(b, addr)
}

// txn is one of our queries awaiting its answer.
type txn struct {
	addr netip.AddrPort // the only address its answer may come from
	ch   chan *Msg
	// exempted: a datagram has been let through unpaid as its answer.
	// One is all an answer needs; more could be a node's way past its
	// rate limit.
	exempted bool
}

// Transport runs KRPC over one UDP socket. It is safe for concurrent use:
// any number of goroutines may Query at once.
type Transport struct {
	cfg  Config
	conn net.PacketConn
	udp  AddrPortConn // non-nil when conn has calls with netip addresses, which do not allocate
	log  *zap.Logger

	mu      sync.Mutex
	pending map[uint32]txn // by transaction ID, unique among those outstanding
	newTxID func() uint32  // random; tests replace it
	closed  bool

	lim     *limiter      // nil: no per-source limit
	sendLim *rate.Limiter // nil: no send budget

	// Owned by the reader goroutine: the query being handled and the
	// answer being encoded.
	qbuf   queryBuf
	outBuf []byte

	done   chan struct{}
	readWG sync.WaitGroup

	stats struct {
		packetsIn, packetsOut, responsesIn, errorsIn,
		timeouts, oversized, malformed, unmatched, answered203, sendErrors,
		rateLimited, blocked, sendDropped, amplification atomic.Uint64
		// Queries by method; their sums are QueriesIn and QueriesOut.
		queriesInBy, queriesOutBy [NumMethodClasses]atomic.Uint64
	}
}

// New starts a Transport reading from cfg.Conn.
func New(cfg Config) (*Transport, error) {
	if cfg.Conn == nil {
		return nil, errors.New("krpc: Config.Conn is nil")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxPacket <= 0 {
		cfg.MaxPacket = DefaultMaxPacket
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	cfg.MaxInflight = min(cfg.MaxInflight, maxInflight)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	applyLimitDefaults(&cfg)
	t := &Transport{
		cfg:     cfg,
		conn:    cfg.Conn,
		log:     cfg.Logger,
		pending: make(map[uint32]txn),
		done:    make(chan struct{}),
		lim:     newLimiter(&cfg),
	}
	switch {
	case cfg.SendLimiter != nil:
		t.sendLim = cfg.SendLimiter
	case cfg.SendRate > 0:
		t.sendLim = NewSendLimiter(cfg.SendRate, cfg.SendBurst)
	}
	switch c := cfg.Conn.(type) {
	case *net.UDPConn:
		t.udp = udpConn{c}
	case AddrPortConn:
		t.udp = c
	}
	t.qbuf.borrowStrings = cfg.BorrowQuery
	t.outBuf = make([]byte, 0, 1500)
	t.newTxID = newTxIDSource()
	t.readWG.Add(1)
	go t.readLoop()
	return t, nil
}

// LocalAddr is the socket's address.
func (t *Transport) LocalAddr() netip.AddrPort {
	return addrPortOf(t.conn.LocalAddr())
}

// Close stops the reader, closes the socket and fails outstanding queries
// with ErrClosed. It is safe to call more than once.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	t.mu.Unlock()
	err := t.conn.Close()
	t.readWG.Wait()
	return err
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	s := &t.stats
	var blockedIPs uint64
	if t.lim != nil {
		blockedIPs = uint64(t.lim.blockedCount(t.cfg.Now()))
	}
	in, out := loadAll(&s.queriesInBy), loadAll(&s.queriesOutBy)
	return Stats{
		PacketsIn: s.packetsIn.Load(), PacketsOut: s.packetsOut.Load(),
		QueriesIn: in.sum(), QueriesOut: out.sum(),
		ResponsesIn: s.responsesIn.Load(), ErrorsIn: s.errorsIn.Load(),
		Timeouts: s.timeouts.Load(), Oversized: s.oversized.Load(),
		Malformed: s.malformed.Load(), Unmatched: s.unmatched.Load(),
		Answered203: s.answered203.Load(), SendErrors: s.sendErrors.Load(),
		RateLimited: s.rateLimited.Load(), Blocked: s.blocked.Load(),
		BlockedIPs: blockedIPs, SendDropped: s.sendDropped.Load(),
		Amplification:      s.amplification.Load(),
		QueriesInByMethod:  in,
		QueriesOutByMethod: out,
	}
}

func loadAll(cs *[NumMethodClasses]atomic.Uint64) ByMethod {
	var b ByMethod
	for i := range cs {
		b[i] = cs[i].Load()
	}
	return b
}

// IsBlocked reports whether datagrams from addr's source are being dropped
// as abusive. The answers to our queries to it are not: a blocked source
// may be the victim of a spoofer.
func (t *Transport) IsBlocked(addr netip.Addr) bool {
	return t.lim != nil && t.lim.isBlocked(addr.Unmap(), t.cfg.Now())
}

// Query sends method with args to addr and waits for the answer. It
// returns the response message, or an error: a *Error when the node
// answered with a KRPC error (the message is returned too), ErrTimeout,
// ErrClosed, or ctx's error. With a send budget (Config.SendRate), Query
// first waits for a token, within ctx.
func (t *Transport) Query(ctx context.Context, addr netip.AddrPort, method string, args *Args) (*Msg, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if err := t.waitSend(ctx); err != nil {
		return nil, err
	}
	ch := make(chan *Msg, 1)
	id, err := t.register(addr, ch)
	if err != nil {
		return nil, err
	}
	defer t.unregister(id, ch)

	q := Msg{
		T: string(binary.BigEndian.AppendUint32(make([]byte, 0, TxIDLen), id)),
		Y: KindQuery, Q: method, A: args, V: t.cfg.Version,
	}
	if t.cfg.ReadOnly {
		q.RO = 1
	}
	if err := t.sendMsg(addr, &q); err != nil {
		select {
		case <-t.done:
			return nil, ErrClosed // the send failed because Close shut the socket
		default:
		}
		return nil, fmt.Errorf("%s %v: %w", method, addr, err)
	}
	t.stats.queriesOutBy[ClassOf(method)].Add(1)

	timer := time.NewTimer(t.cfg.Timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.Y == KindError {
			return r, r.E
		}
		return r, nil
	case <-timer.C:
		t.stats.timeouts.Add(1)
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.done:
		return nil, ErrClosed
	}
}

func (t *Transport) register(addr netip.AddrPort, ch chan *Msg) (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	if len(t.pending) >= t.cfg.MaxInflight {
		return 0, ErrTooManyInflight
	}
	// The table holds at most 2^15 of 2^32 IDs, so a free one is near.
	for {
		id := t.newTxID()
		if _, busy := t.pending[id]; !busy {
			t.pending[id] = txn{addr: addr, ch: ch}
			return id, nil
		}
	}
}

// unregister ends the query that waits on ch under id, unless its answer
// already has, and id may since belong to another.
func (t *Transport) unregister(id uint32, ch chan *Msg) {
	t.mu.Lock()
	if tx, ok := t.pending[id]; ok && tx.ch == ch {
		delete(t.pending, id)
	}
	t.mu.Unlock()
}

// txID is the transaction ID tid names, if it could be one of ours.
func txID[S string | []byte](tid S) (uint32, bool) {
	if len(tid) != TxIDLen {
		return 0, false
	}
	return uint32(tid[0])<<24 | uint32(tid[1])<<16 | uint32(tid[2])<<8 | uint32(tid[3]), true
}

// claimExempt reports whether a reply with transaction ID tid from from
// would answer a query of ours that has not yet had a datagram exempted
// as its answer, and if so marks it as having had one.
func (t *Transport) claimExempt(tid []byte, from netip.AddrPort) (uint32, bool) {
	id, ok := txID(tid)
	if !ok {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, ok := t.pending[id]
	if !ok || tx.addr != from || tx.exempted {
		return 0, false
	}
	tx.exempted = true
	t.pending[id] = tx
	return id, true
}

// deliver hands a reply to the query waiting for it; a reply that matches
// no outstanding (transaction ID, address) pair is dropped.
func (t *Transport) deliver(from netip.AddrPort, m *Msg) bool {
	id, ok := txID(m.T)
	if !ok {
		return false
	}
	t.mu.Lock()
	tx, ok := t.pending[id]
	ok = ok && tx.addr == from
	if ok {
		delete(t.pending, id) // a duplicate reply then counts as unmatched
	}
	t.mu.Unlock()
	if ok {
		tx.ch <- m // buffered, and this is its only send
	}
	return ok
}

// sendBufs recycles the buffers our queries are encoded into: Query runs
// on many goroutines at once, so they cannot share one.
var sendBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// sendMsg sends one of our queries; waitSend has already paid for it.
func (t *Transport) sendMsg(to netip.AddrPort, m *Msg) error {
	bp := sendBufs.Get().(*[]byte)
	b := m.Append((*bp)[:0])
	err := t.write(to, b)
	*bp = b
	sendBufs.Put(bp)
	return err
}

// reply sends an answer to a query of qlen bytes, unless it is too big for
// the amplification bound or over the send budget; either drop is counted.
// It reports whether the answer went out. It runs on the reader goroutine,
// whose buffer it encodes into.
func (t *Transport) reply(to netip.AddrPort, m *Msg, qlen int) bool {
	b := m.Append(t.outBuf[:0])
	t.outBuf = b[:0]
	if f := t.cfg.MaxAmplification; f > 0 && len(b) > max(f*qlen, AmplificationAllowance) {
		t.stats.amplification.Add(1)
		return false
	}
	if t.sendLim != nil && !t.sendLim.AllowN(t.cfg.Now(), 1) {
		t.stats.sendDropped.Add(1)
		return false
	}
	return t.write(to, b) == nil
}

func (t *Transport) write(to netip.AddrPort, b []byte) (err error) {
	if t.udp != nil {
		_, err = t.udp.WriteToAddrPort(b, to)
	} else {
		_, err = t.conn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	}
	if err != nil {
		t.stats.sendErrors.Add(1)
		return err
	}
	t.stats.packetsOut.Add(1)
	return nil
}

func (t *Transport) readLoop() {
	defer t.readWG.Done()
	buf := make([]byte, t.cfg.MaxPacket+1)
	for {
		n, from, err := t.readFrom(buf)
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP-driven errors (connection refused) surface here on some
			// systems; they say nothing about the socket itself.
			t.log.Debug("krpc read", zap.Error(err))
			continue
		}
		t.stats.packetsIn.Add(1)
		if n > t.cfg.MaxPacket {
			t.stats.oversized.Add(1)
			continue
		}
		// One walk tells the limiter whether this answers a query of
		// ours, and tells the handler what it need not decode.
		h := scanHead(buf[:n])
		ok, exempt := t.admit(from, &h)
		if !ok {
			continue
		}
		t.handlePacket(from, buf[:n], &h, exempt)
	}
}

func (t *Transport) readFrom(buf []byte) (int, netip.AddrPort, error) {
	if t.udp != nil {
		n, ap, err := t.udp.ReadFromAddrPort(buf)
		return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), err
	}
	n, a, err := t.conn.ReadFrom(buf)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	return n, addrPortOf(a), nil
}

// admit applies the per-source limits to a datagram before it is decoded,
// counting what it drops. The first datagram that reads as the reply to
// one of our queries (its transaction ID outstanding to exactly its
// source address) is exempt from the rate limit and the block list, for
// it answers us: the ID is random, so a spoofer who floods from a node's
// address to get it blocked cannot forge that node's answers, and they
// still arrive. Anything else pays, so that neither another port of a
// node we query, nor a wrong or repeated transaction ID buys a way past
// the limit.
func (t *Transport) admit(from netip.AddrPort, h *head) (ok bool, exempt exemption) {
	if t.lim == nil {
		return true, exemption{}
	}
	if h.isReply() {
		if id, ok := t.claimExempt(h.t, from); ok {
			return true, exemption{id: id, ok: true}
		}
	}
	return t.pay(from), exemption{}
}

// exemption is a datagram's pass past the limits as the answer to our
// transaction id.
type exemption struct {
	id uint32
	ok bool
}

// pay charges a datagram to its source's rate limit and reports whether it
// may be handled; a drop is counted.
func (t *Transport) pay(from netip.AddrPort) bool {
	switch t.lim.admit(from.Addr(), t.cfg.Now()) {
	case rateLimited:
		t.stats.rateLimited.Add(1)
		return false
	case blocked:
		t.stats.blocked.Add(1)
		return false
	}
	return true
}

// handlePacket decodes a datagram at most once (a query in canonical form
// on the fast path, the rest with Parse) and dispatches it. An exempt
// datagram (see admit) that turns out to be anything but the answer to
// its transaction — it fails to parse, it decodes as a query, its query
// was answered or gave up meanwhile — pays after all, before it is
// handled, and is dropped if that puts it over the limit.
func (t *Transport) handlePacket(from netip.AddrPort, b []byte, h *head, exempt exemption) {
	// The common case, a query in canonical form, is decoded without
	// reflection; into the reader's reused buffer when the Handler only
	// borrows it. An exempt datagram reads as a reply, so never takes it.
	if h.ok && string(h.y) == KindQuery && !exempt.ok {
		if qb := &t.qbuf; qb.decode(b) {
			if !t.cfg.BorrowQuery {
				qb = qb.clone() // the Handler keeps it
			}
			t.answer(from, &qb.m, len(b))
			return
		}
	}
	m, err := parseScanned(b, h)
	if err != nil {
		if exempt.ok && !t.pay(from) {
			return
		}
		t.stats.malformed.Add(1)
		t.answerMalformed(from, h, len(b))
		return
	}
	switch m.Y {
	case KindQuery:
		if exempt.ok && !t.pay(from) {
			return
		}
		t.answer(from, &m, len(b))
	case KindResponse, KindError:
		if id, _ := txID(m.T); exempt.ok && id != exempt.id || !t.deliver(from, &m) {
			if exempt.ok && !t.pay(from) {
				return
			}
			t.stats.unmatched.Add(1)
			return
		}
		if m.Y == KindError {
			t.stats.errorsIn.Add(1)
		} else {
			t.stats.responsesIn.Add(1)
		}
	}
}

// answer hands a query of qlen bytes to the Handler and sends its answer.
func (t *Transport) answer(from netip.AddrPort, q *Msg, qlen int) {
	t.stats.queriesInBy[ClassOf(q.Q)].Add(1)
	if t.cfg.Handler == nil {
		return
	}
	r := t.cfg.Handler(from, q)
	if r == nil {
		return
	}
	r.T = q.T
	switch {
	case r.E != nil:
		r.Y = KindError
	default:
		r.Y = KindResponse
	}
	r.V = t.cfg.Version
	t.reply(from, r, qlen)
}

// answerMalformed sends error 203 for a datagram of n bytes that is
// recognisably a query (one dict with y=q and a sane t) but failed
// validation. Other garbage gets no answer: answering it would make us a
// reflector. The head has all it needs, so the datagram is not decoded
// again.
func (t *Transport) answerMalformed(from netip.AddrPort, h *head, n int) {
	if !h.ok || string(h.y) != KindQuery || len(h.t) == 0 || len(h.t) > MaxTransactionIDLen {
		return
	}
	e := Msg{T: string(h.t), Y: KindError, E: &Error{Code: ErrorCodeProtocol, Msg: "malformed query"}, V: t.cfg.Version}
	if t.reply(from, &e, n) {
		t.stats.answered203.Add(1)
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
