package adversary

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A HandshakeHold connects again whenever the listener closes one of its
// connections, drips its handshake when told to, and Stop ends it all.
func TestHandshakeHold(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 16)
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if i < 2 {
				c.Close() // the first two are turned away
				continue
			}
			go func() {
				// Each later one: read what it drips, then hold.
				b := make([]byte, 2)
				_, _ = io.ReadFull(c, b)
				got <- b
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	ih := [20]byte{9}
	h, err := StartHandshakeHold([]netip.Addr{netip.MustParseAddr("127.0.0.1")}, 2, netip.MustParseAddrPort(ln.Addr().String()), ih, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := Handshake(ih, RandomID()).Append(nil)[:2]
	for range 2 {
		select {
		case b := <-got:
			if string(b) != string(want) {
				t.Fatalf("dripped %q, want %q", b, want)
			}
		case <-time.After(10 * time.Second):
			open, dials, closes := h.Counts()
			t.Fatalf("no drip on a second connection: %d open, %d dialled, %d closed", open, dials, closes)
		}
	}
	open, dials, closes := h.Counts()
	if open != 2 || dials != 4 || closes != 2 {
		t.Fatalf("%d open, %d dialled, %d closed: want 2, 4, 2", open, dials, closes)
	}
	h.Stop()
	if open, _, _ := h.Counts(); open != 0 {
		t.Fatalf("%d connections open after Stop", open)
	}
}
