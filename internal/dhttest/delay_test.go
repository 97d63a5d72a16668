package dhttest

import (
	"net"
	"testing"
	"time"
)

// Each datagram waits the delay its destination is given, none at all
// without one, and the writer never waits; Close drops what is pending.
func TestDelayConnPerDestination(t *testing.T) {
	listen := func() net.PacketConn {
		pc, err := net.ListenPacket("udp4", "127.0.94.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	slowTo, fastTo := listen(), listen()
	raw, err := net.ListenPacket("udp4", "127.0.94.2:0")
	if err != nil {
		t.Fatal(err)
	}
	dc := NewDelayConn(raw)
	defer dc.Close()
	const d = 80 * time.Millisecond
	dc.SetDelay(func(to net.Addr) time.Duration {
		if to.String() == slowTo.LocalAddr().String() {
			return d
		}
		return 0
	})
	heard := make(chan net.Addr, 4)
	dc.OnRead(func(from net.Addr) { heard <- from })
	sent := time.Now()
	if _, err := dc.WriteTo([]byte("slow"), slowTo.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.WriteTo([]byte("fast"), fastTo.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	fastTo.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := fastTo.ReadFrom(buf); err != nil || string(buf[:n]) != "fast" {
		t.Fatalf("fast: %q %v", buf[:n], err)
	}
	slowTo.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := slowTo.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "slow" {
		t.Fatalf("slow: %q %v", buf[:n], err)
	}
	if got := time.Since(sent); got < d {
		t.Fatalf("delayed datagram arrived after %v, before its %v", got, d)
	}

	// The read hook sees every source.
	if _, err := slowTo.WriteTo([]byte("back"), dc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	dc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, from, err := dc.ReadFrom(buf); err != nil || from.String() != slowTo.LocalAddr().String() {
		t.Fatalf("read from %v: %v", from, err)
	}
	if from := <-heard; from.String() != slowTo.LocalAddr().String() {
		t.Fatalf("hook heard %v", from)
	}

	// Pending at Close: dropped, and Close waits for the timer.
	dc.SetDelay(func(net.Addr) time.Duration { return time.Hour })
	if _, err := dc.WriteTo([]byte("never"), fastTo.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	dc.SetDelay(func(net.Addr) time.Duration { return 10 * time.Millisecond })
	if _, err := dc.WriteTo([]byte("dropped"), fastTo.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := dc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.WriteTo([]byte("after"), fastTo.LocalAddr()); err == nil {
		t.Fatal("write after Close accepted")
	}
	if err := dc.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}
