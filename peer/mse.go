package peer

import (
	"bytes"
	"context"
	"errors"
	"expvar"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/anacrolix/torrent/mse"
	"go.uber.org/zap"

	"node/metadata"
)

// Encryption is how a torrent uses Message Stream Encryption (MSE/PE, the
// obfuscation handshake of Vuze, libtorrent and Transmission) on its
// peer connections.
type Encryption int

const (
	// EncryptPrefer, the default, accepts both plaintext and MSE
	// connections and dials with MSE first, falling back to plaintext
	// with a peer that refuses it, as libtorrent and Transmission do by
	// default.
	EncryptPrefer Encryption = iota
	// EncryptRequire speaks only MSE with an RC4 stream both ways: a
	// plaintext handshake or an MSE peer that offers or selects only
	// plaintext is refused, and no dial goes out in plaintext.
	EncryptRequire
	// EncryptOff speaks only the plaintext protocol: an incoming MSE
	// handshake is refused.
	EncryptOff
)

func (e Encryption) String() string {
	switch e {
	case EncryptPrefer:
		return "prefer"
	case EncryptRequire:
		return "require"
	case EncryptOff:
		return "off"
	}
	return fmt.Sprintf("Encryption(%d)", int(e))
}

// ParseEncryption reads prefer, require or off.
func ParseEncryption(s string) (Encryption, error) {
	for _, e := range []Encryption{EncryptPrefer, EncryptRequire, EncryptOff} {
		if s == e.String() {
			return e, nil
		}
	}
	return 0, fmt.Errorf("encryption %q: want prefer, require or off", s)
}

// btProtocol opens every plaintext BitTorrent handshake (BEP 3). An MSE
// initiator opens with its 96-byte Diffie-Hellman key instead, which
// begins with these 20 bytes with negligible probability.
const btProtocol = "\x13BitTorrent protocol"

// maxPlainOnly bounds the addresses remembered as refusing MSE (see
// plainOnly): beyond it the oldest is forgotten, and costs one more
// failed MSE attempt the next time it is dialled.
const maxPlainOnly = 1024

// plainOnlyFor is how long an address is dialled in plaintext after it
// refused MSE: the peer there may change its settings, or the address
// its owner.
const plainOnlyFor = time.Hour

var (
	// errMSE wraps a failed MSE handshake: in prefer mode a dial that
	// fails so is tried again in plaintext.
	errMSE = errors.New("MSE handshake failed")
	// errPlainRefused: a plaintext handshake under EncryptRequire.
	errPlainRefused = errors.New("plaintext handshake refused: encryption required")
	// errMSERefused: an MSE handshake under EncryptOff.
	errMSERefused = errors.New("MSE handshake refused: encryption off")
	// errHeaderRefused: an MSE handshake that selected a plaintext
	// stream under EncryptRequire.
	errHeaderRefused = errors.New("MSE without RC4 refused: encryption required")
)

// cryptoProvide is what our MSE dials offer (crypto_provide): RC4 alone
// when it is required; both otherwise, as libtorrent and Transmission do
// when they merely prefer encryption, so that a peer that wants its
// payload in plaintext (libtorrent's default choice) takes us without a
// second attempt.
func (e Encryption) cryptoProvide() mse.CryptoMethod {
	if e == EncryptRequire {
		return mse.CryptoMethodRC4
	}
	return mse.AllSupportedCrypto
}

// cryptoSelect answers an MSE initiator's crypto_provide. RC4 whenever it
// is offered: a peer that offers it and connects with MSE is hiding its
// traffic, and header obfuscation alone leaves every message after the
// handshake readable to the traffic shaping it hides from. Transmission
// selects the same way when it prefers encryption; libtorrent, by
// default (prefer_rc4 off) and anacrolix select plaintext when both are
// offered, to save the CPU, which we measured (BenchmarkEncryptionCPU).
// Under EncryptRequire an initiator without RC4 gets no method, and the
// handshake fails.
func (e Encryption) cryptoSelect(provided mse.CryptoMethod) mse.CryptoMethod {
	forgetProvide(provided)
	switch {
	case provided&mse.CryptoMethodRC4 != 0:
		return mse.CryptoMethodRC4
	case e != EncryptRequire && provided&mse.CryptoMethodPlaintext != 0:
		return mse.CryptoMethodPlaintext
	}
	return 0
}

// mseProvides is the mse library's process-wide expvar count of the
// crypto_provide values it has received, keyed by value: 2^32 keys, chosen
// by whoever connects, and never removed. The library counts the value
// just before it asks cryptoSelect, which forgets any key beyond the
// methods that exist, so the map holds at most their four combinations.
var mseProvides, _ = expvar.Get("mseCryptoProvides").(*expvar.Map)

func forgetProvide(provided mse.CryptoMethod) {
	if provided&^mse.AllSupportedCrypto != 0 && mseProvides != nil {
		mseProvides.Delete(strconv.FormatUint(uint64(provided), 16))
	}
}

// cryptoName names a connection's encryption for logs and listings: none
// (a plaintext BitTorrent handshake), header (an MSE handshake, then
// plaintext) or rc4.
func cryptoName(m mse.CryptoMethod) string {
	switch m {
	case 0:
		return "none"
	case mse.CryptoMethodPlaintext:
		return "header"
	case mse.CryptoMethodRC4:
		return "rc4"
	}
	return fmt.Sprintf("method %d", m)
}

// cryptoConn is a connection whose stream is read and written through
// what MSE returned (an RC4 stream, or bytes already read put back in
// front); deadlines, addresses and Close are the socket's.
type cryptoConn struct {
	net.Conn
	r io.Reader
	w io.Writer
	// maxWrite, if not 0, is the most handed to w at once (see
	// maxCipherWrite).
	maxWrite int
}

// maxCipherWrite is the most handed to the MSE library's RC4 writer at
// once: it encrypts into a buffer the size of the largest write it was
// given and keeps that buffer for as long as the connection lasts, and
// the writer's batches are writeBufSize.
const maxCipherWrite = 64 << 10

func newCryptoConn(nc net.Conn, rw io.ReadWriter, method mse.CryptoMethod) *cryptoConn {
	c := &cryptoConn{Conn: nc, r: rw, w: rw}
	if method == mse.CryptoMethodRC4 {
		c.maxWrite = maxCipherWrite
	}
	return c
}

func (c *cryptoConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *cryptoConn) Write(b []byte) (int, error) {
	if c.maxWrite == 0 {
		return c.w.Write(b)
	}
	n := 0
	for n < len(b) {
		m, err := c.w.Write(b[n:min(len(b), n+c.maxWrite)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// prefixConn gives back the bytes the sniffer read before the rest of
// the socket's stream.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// handshakeDeadline bounds nc's reads and writes until the returned
// function is called: the earlier of ctx's deadline and
// handshakeTimeout from now, and at once when ctx ends, so that a
// shutdown does not wait out a silent peer.
func handshakeDeadline(ctx context.Context, nc net.Conn) func() {
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	return func() {
		stop()
		_ = nc.SetDeadline(time.Time{})
	}
}

// acceptCrypto sniffs an incoming connection: a plaintext BitTorrent
// handshake is handed on with its first bytes put back; anything else is
// taken for an MSE initiator, and answered as the receiver with the
// info-hashes we serve as the secret keys (skeys). It returns the
// connection to run the BitTorrent handshake over and the method MSE
// selected (0: none). Bounded like the handshake: by ctx and
// handshakeTimeout, and the MSE library reads at most 532 bytes of
// padding before the key hash it synchronises on, and at most 64 KiB of
// padding and initial payload after it.
func acceptCrypto(ctx context.Context, nc net.Conn, mode Encryption, ihs ...metadata.InfoHash) (net.Conn, mse.CryptoMethod, error) {
	cc, method, _, err := receiveCrypto(ctx, nc, mode, func() []metadata.InfoHash { return ihs })
	return cc, method, err
}

// receiveCrypto is acceptCrypto with the skeys asked of ihs only once an
// MSE initiator needs them (a Mux's change as torrents come and go); it
// also returns the skey the initiator used, nil for a plaintext handshake.
func receiveCrypto(ctx context.Context, nc net.Conn, mode Encryption, ihs func() []metadata.InfoHash) (net.Conn, mse.CryptoMethod, []byte, error) {
	undo := handshakeDeadline(ctx, nc)
	defer undo()
	var first [len(btProtocol)]byte
	if _, err := io.ReadFull(nc, first[:]); err != nil {
		return nil, 0, nil, fmt.Errorf("handshake: %w", err)
	}
	pc := &prefixConn{Conn: nc, prefix: first[:]}
	if isPlainHandshake(first[:]) {
		if mode == EncryptRequire {
			return nil, 0, nil, errPlainRefused
		}
		return pc, 0, nil, nil
	}
	if mode == EncryptOff {
		return nil, 0, nil, errMSERefused
	}
	// The library stops at the key that matches: the one it yielded
	// last. It hashes each key it is given, so with many torrents this
	// is a SHA-1 per torrent: the initiator sends HASH('req2', SKEY)
	// xor HASH('req3', S), and S is the library's, so a table from
	// HASH('req2', SKEY) to the info-hash would need a fork. The keys
	// are slices of ihs's own, not copies.
	var skey []byte
	skeys := func(yield func([]byte) bool) {
		keys := ihs()
		for i := range keys {
			if !yield(keys[i][:]) {
				skey = keys[i][:]
				return
			}
		}
	}
	// Bounded by the deadline, not by a context: the library's context
	// wrapper returns early while its read goes on in the background.
	rw, method, err := mse.ReceiveHandshake(context.Background(), pc, skeys, mode.cryptoSelect)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: %w", errMSE, err)
	}
	return newCryptoConn(nc, rw, method), method, skey, nil
}

// admits says why a connection whose MSE handshake selected m (0: none)
// may not be taken under e, or nil: what acceptCrypto enforces, for a
// connection whose MSE a Mux ran under its own policy.
func (e Encryption) admits(m mse.CryptoMethod) error {
	switch {
	case e == EncryptRequire && m == 0:
		return errPlainRefused
	case e == EncryptRequire && m != mse.CryptoMethodRC4:
		return errHeaderRefused
	case e == EncryptOff && m != 0:
		return errMSERefused
	}
	return nil
}

// isPlainHandshake reports whether the first bytes of a connection are
// those of a plaintext BitTorrent handshake.
func isPlainHandshake(first []byte) bool {
	return bytes.HasPrefix(first, []byte(btProtocol))
}

// initiateCrypto runs MSE's initiator side on a connection we dialled,
// with ih as the secret key, offering provide; it returns the connection
// to run the BitTorrent handshake over and the method the peer selected.
// With provide 0 the connection is returned as it is. Our BitTorrent
// handshake is not sent as MSE's initial payload: it follows once the
// stream is set up, which costs a round trip and keeps one handshake
// code path.
func initiateCrypto(ctx context.Context, nc net.Conn, ih metadata.InfoHash, provide mse.CryptoMethod) (net.Conn, mse.CryptoMethod, error) {
	if provide == 0 {
		return nc, 0, nil
	}
	undo := handshakeDeadline(ctx, nc)
	defer undo()
	rw, method, err := mse.InitiateHandshake(&plainReply{Conn: nc}, ih[:], nil, provide)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errMSE, err)
	}
	return newCryptoConn(nc, rw, method), method, nil
}

// errPlainReply: a peer answered our MSE key with a plaintext
// BitTorrent handshake.
var errPlainReply = errors.New("peer answered in plaintext")

// plainReply fails the reads of an MSE initiator as soon as the peer's
// first bytes are a plaintext BitTorrent handshake: a plaintext peer that
// took the start of our key for a handshake and answered would otherwise
// hold the MSE handshake until its timeout, while it waits for the
// messages we never send. A Diffie-Hellman key opens so with negligible
// probability.
type plainReply struct {
	net.Conn
	first []byte
}

func (c *plainReply) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if k := len(btProtocol) - len(c.first); k > 0 && n > 0 {
		c.first = append(c.first, b[:min(n, k)]...)
		if len(c.first) == len(btProtocol) && isPlainHandshake(c.first) {
			return n, errPlainReply
		}
	}
	return n, err
}

// plainOnly remembers the addresses whose MSE handshake failed where a
// plaintext one then worked, so that prefer mode dials them in plaintext
// at once (libtorrent likewise marks such a peer as not supporting
// encryption), for plainOnlyFor, at most maxPlainOnly.
type plainOnly struct{ recentAddrs }

func (p *plainOnly) has(a netip.AddrPort, now time.Time) bool {
	return p.recentAddrs.has(a, now, plainOnlyFor)
}

func (p *plainOnly) add(a netip.AddrPort, now time.Time) { p.recentAddrs.add(a, now, maxPlainOnly) }

// isTimeout says whether err is a deadline that passed, over TCP
// (os.ErrDeadlineExceeded) or uTP (go-libutp's own error, a net.Error
// whose Timeout is true but which is not os.ErrDeadlineExceeded).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// dialCrypto is what a dial to a offers with MSE: nothing under
// EncryptOff or for an address known to refuse MSE.
func (t *Torrent) dialCrypto(a netip.AddrPort) mse.CryptoMethod {
	switch {
	case t.cfg.Encryption == EncryptOff:
		return 0
	case t.cfg.Encryption == EncryptPrefer && t.plain.has(a, time.Now()):
		return 0
	}
	return t.cfg.Encryption.cryptoProvide()
}

// dial connects to a, with MSE as the mode and what we know of a say; in
// prefer mode a failed MSE handshake is followed at once by a plaintext
// dial, and a plaintext success is remembered (see plainOnly). Not after
// a timeout: a peer that only speaks plaintext hangs up on our key at
// once, and one that sat silent through the handshake timeout would sit
// through a second one.
func (t *Torrent) dial(a netip.AddrPort) error {
	provide := t.dialCrypto(a)
	err := t.dialWith(a, provide)
	if provide == 0 || t.cfg.Encryption != EncryptPrefer || !errors.Is(err, errMSE) ||
		isTimeout(err) || t.ctx.Err() != nil {
		return err
	}
	t.log.Debug("MSE refused; dialling in plaintext", zap.Stringer("peer", a), zap.Error(err))
	if err = t.dialWith(a, 0); err == nil {
		t.plain.add(a, time.Now())
	}
	return err
}
