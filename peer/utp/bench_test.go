//go:build cgo

package utp

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkStream copies 64 MiB one way over one uTP connection on
// loopback: libutp's throughput, without the peer wire.
func BenchmarkStream(b *testing.B) {
	s1 := listen(b, "udp4", "127.0.124.20:0")
	s2 := listen(b, "udp4", "127.0.124.21:0")
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := s2.Listener().Accept()
		if err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, err := s1.Dial(ctx, s2.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c1.Close()
	c2 := <-accepted
	defer c2.Close()
	const n = 64 << 20
	b.SetBytes(n)
	buf := make([]byte, 1<<20)
	for range b.N {
		done := make(chan error, 1)
		go func() {
			_, err := io.CopyN(io.Discard, c2, n)
			done <- err
		}()
		for left := n; left > 0; left -= len(buf) {
			if _, err := c1.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
