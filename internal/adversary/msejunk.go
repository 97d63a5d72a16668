package adversary

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/anacrolix/torrent/mse"
)

// Attacks on a victim that accepts the Message Stream Encryption
// handshake (MSE/PE): an initiator opens with a 96-byte Diffie-Hellman
// key and up to 512 bytes of padding, so a victim that sniffs for it
// must read a stranger's bytes before it knows anything about them.

// MSEKeyLen is the length of an MSE public key.
const MSEKeyLen = 96

// MSEJunkKey is random bytes in place of a Diffie-Hellman key: the
// victim cannot tell, and finds out only when no hash it expects follows.
func MSEJunkKey() []byte {
	b := make([]byte, MSEKeyLen)
	_, _ = rand.Read(b)
	return b
}

// Zeros is an endless stream of zero bytes: padding that never ends.
type Zeros struct{}

func (Zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// Junk is an endless stream of random bytes.
type Junk struct{}

func (Junk) Read(b []byte) (int, error) {
	_, _ = rand.Read(b)
	return len(b), nil
}

// ErrNotHungUp: the victim kept the connection open until the caller's
// context ended.
var ErrNotHungUp = errors.New("the victim did not hang up")

// MSEOpening connects from local to addr, writes opening, then whatever
// more gives (nil: nothing, the connection then sits silent) until the
// victim hangs up, and waits for that. It returns how long after the
// connect the victim hung up and how many bytes we got written; ctx
// ending first is ErrNotHungUp.
func MSEOpening(ctx context.Context, local netip.Addr, addr netip.AddrPort, opening []byte, more io.Reader) (time.Duration, int64, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	hungUp := make(chan time.Duration, 1)
	go func() {
		// The victim may answer (its own key and padding): read and
		// drop that until the connection ends.
		var buf [4096]byte
		for {
			if _, err := nc.Read(buf[:]); err != nil {
				hungUp <- time.Since(start)
				return
			}
		}
	}()
	var sent int64
	n, err := nc.Write(opening)
	sent += int64(n)
	if err == nil && more != nil {
		var k int64
		k, _ = io.Copy(nc, more)
		sent += k
	}
	took := <-hungUp
	if ctx.Err() != nil {
		return took, sent, ErrNotHungUp
	}
	return took, sent, nil
}

// MSEInitiate runs an honest MSE initiator from local to addr with skey
// (an info-hash) as the secret key, offering provide, and then our
// plaintext BitTorrent handshake for ih inside the stream: an
// initiator naming a torrent the victim does not serve, or offering
// only what the victim refuses. It returns the method the victim
// selected, and the error of the first step that failed.
func MSEInitiate(ctx context.Context, local netip.Addr, addr netip.AddrPort, skey, ih [20]byte, provide mse.CryptoMethod) (mse.CryptoMethod, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	rw, method, err := mse.InitiateHandshake(nc, skey[:], nil, provide)
	if err != nil {
		return method, err
	}
	p := &Peer{Conn: &rwConn{Conn: nc, rw: rw}, ID: RandomID()}
	return method, p.handshake(ctx, ih, true)
}

// rwConn reads and writes through an MSE stream.
type rwConn struct {
	net.Conn
	rw io.ReadWriter
}

func (c *rwConn) Read(b []byte) (int, error)  { return c.rw.Read(b) }
func (c *rwConn) Write(b []byte) (int, error) { return c.rw.Write(b) }
