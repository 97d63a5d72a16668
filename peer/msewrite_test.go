package peer

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/anacrolix/torrent/mse"
)

// rc4Pair sets up an RC4 stream over a pipe: what we write on the
// first, the peer reads (and discards) on the second.
func rc4Pair(t *testing.T) *cryptoConn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	skey := make([]byte, 20)
	type result struct {
		rw  io.ReadWriter
		err error
	}
	recv := make(chan result, 1)
	go func() {
		rw, _, err := mse.ReceiveHandshake(context.Background(), b, func(yield func([]byte) bool) { yield(skey) }, func(mse.CryptoMethod) mse.CryptoMethod { return mse.CryptoMethodRC4 })
		recv <- result{rw, err}
	}()
	rw, method, err := mse.InitiateHandshake(a, skey, nil, mse.CryptoMethodRC4)
	if err != nil || method != mse.CryptoMethodRC4 {
		t.Fatalf("initiate: method %v, %v", method, err)
	}
	r := <-recv
	if r.err != nil {
		t.Fatalf("receive: %v", r.err)
	}
	go func() { _, _ = io.Copy(io.Discard, r.rw) }()
	return newCryptoConn(a, rw, method)
}

// The RC4 writer of the MSE library keeps a buffer the size of the
// largest write it was given, for as long as the connection lasts: a
// connection that served one write batch must not keep writeBufSize for
// that.
func TestRC4WriterBufferBounded(t *testing.T) {
	const conns = 32
	var cs []*cryptoConn
	for range conns {
		cs = append(cs, rc4Pair(t))
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	batch := make([]byte, writeBufSize)
	for _, c := range cs {
		if n, err := c.Write(batch); n != len(batch) || err != nil {
			t.Fatalf("write: %d of %d bytes, %v", n, len(batch), err)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if bound := int64(conns * (maxCipherWrite + 16<<10)); held > bound {
		t.Fatalf("%d RC4 connections hold %d KiB after one write batch each (%d KiB each), want at most %d KiB each",
			conns, held>>10, held/conns>>10, bound/conns>>10)
	}
	t.Logf("%d RC4 connections hold %d KiB", conns, held>>10)
	runtime.KeepAlive(cs)
}
