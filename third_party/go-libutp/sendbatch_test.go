package utp

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// libtorrentBuffer is the UDP receive buffer of libtorrent (and of many
// clients): a datagram longer is cut short.
const libtorrentBuffer = 1500

func udpListen(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Room for every datagram a test sends before its reader runs.
	if err := c.SetReadBuffer(testReadBuffer); err != nil {
		t.Fatal(err)
	}
	return c
}

// testReadBuffer is the receive buffer the tests ask for; the kernel
// gives less where net.core.rmem_max is lower (see testDatagrams).
const testReadBuffer = 4 << 20

// testDatagrams is how many full-size datagrams a test may send to c at
// once: as many as its receive buffer holds (counting the kernel's
// overhead, about 1 KiB a datagram), at most want.
func testDatagrams(t *testing.T, c *net.UDPConn, want int) int {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	rc.Control(func(fd uintptr) { n, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	if err != nil {
		t.Fatal(err)
	}
	if n/4096 < want {
		want = n / 4096
	}
	return want
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// datagram i of a test: n bytes, its first bytes i.
func datagram(i, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	b[0], b[1] = byte(i>>8), byte(i)
	return b
}

// receive starts reading want's datagrams from c, each into a buffer of
// libtorrentBuffer bytes (reading as they come, so that the socket's
// buffer does not overflow); the function it returns checks they were
// want, in order.
func receive(t *testing.T, c *net.UDPConn, want [][]byte) (check func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, libtorrentBuffer)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i, w := range want {
			n, _, flags, _, err := c.ReadMsgUDP(buf, nil)
			if err != nil {
				done <- fmt.Errorf("datagram %d of %d: %v", i, len(want), err)
				return
			}
			if flags&syscall.MSG_TRUNC != 0 {
				done <- fmt.Errorf("datagram %d: longer than %d bytes", i, libtorrentBuffer)
				return
			}
			if !bytes.Equal(buf[:n], w) {
				done <- fmt.Errorf("datagram %d: got %d bytes starting %x, want %d starting %x", i, n, buf[:2], len(w), w[:2])
				return
			}
		}
		done <- nil
	}()
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func noFail(t *testing.T) func(unsafe.Pointer, error) {
	return func(_ unsafe.Pointer, err error) { t.Errorf("send failed: %v", err) }
}

// A queue of full-size datagrams to two receivers, a long run to one and
// then both in turn, with shorter ones among them, is sent in few calls and each receiver gets ordinary
// datagrams, none longer than libtorrent reads, in the order queued.
func TestSendQueueBatches(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(map[bool]string{true: "gso", false: "mmsg"}[gso], func(t *testing.T) {
			src := udpListen(t, "127.0.0.1:0")
			r1, r2 := udpListen(t, "127.0.0.1:0"), udpListen(t, "127.0.0.1:0")
			b := newBatchConn(src)
			if runtime.GOOS != "linux" {
				t.Skip("batched sends are Linux's")
			}
			if gso && !b.gso {
				t.Skip("the kernel has no UDP GSO")
			}
			b.gso = gso
			var q sendQueue
			var w1, w2 [][]byte
			count := testDatagrams(t, r1, 150)
			for i := 0; i < count; i++ {
				n := 1402
				if i%37 == 36 {
					n = 300 + i
				}
				d := datagram(i, n)
				if i >= 100 && i%5 == 4 {
					q.add(d, addrOf(r2), nil)
					w2 = append(w2, d)
				} else {
					q.add(d, addrOf(r1), nil)
					w1 = append(w1, d)
				}
			}
			check1, check2 := receive(t, r1, w1), receive(t, r2, w2)
			calls := batchCalls.Load()
			b.flush(&q, noFail(t))
			check1()
			check2()
			if got := batchCalls.Load() - calls; got > 4 {
				t.Errorf("%d datagrams took %d sendmmsg calls", len(q.ds), got)
			}
			if b.gso != gso {
				t.Errorf("GSO went from %v to %v", gso, b.gso)
			}
		})
	}
}

// fakeSender sends like mmsgSender but at most one message a call (a
// partial batch), and fails every GSO message with err.
type fakeSender struct {
	real    batchSender
	err     error
	gsoMsgs int
}

func (f *fakeSender) send(q *sendQueue, ms []batchMsg) (int, error) {
	if ms[0].seg != 0 {
		f.gsoMsgs++
		if f.err != nil {
			return 0, f.err
		}
	}
	return f.real.send(q, ms[:1])
}

// When the kernel refuses GSO sends (as with a device without checksum
// offload: EIO), the datagrams go out one by one, the socket stops
// trying GSO, and partial batches are resumed where they stopped.
func TestSendQueueGSOFallback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("batched sends are Linux's")
	}
	src, dst := udpListen(t, "127.0.0.1:0"), udpListen(t, "127.0.0.1:0")
	b := newBatchConn(src)
	fake := &fakeSender{real: b.batch, err: syscall.EIO}
	b.batch, b.gso = fake, true
	var q sendQueue
	var want [][]byte
	count := testDatagrams(t, dst, 100)
	for i := 0; i < count; i++ {
		d := datagram(i, 1402)
		q.add(d, addrOf(dst), nil)
		want = append(want, d)
	}
	fallbacks := gsoFallbacks.Load()
	check := receive(t, dst, want)
	b.flush(&q, noFail(t))
	check()
	if b.gso || gsoFallbacks.Load() != fallbacks+1 {
		t.Fatalf("GSO still on (%v) or fell back %d times", b.gso, gsoFallbacks.Load()-fallbacks)
	}
	if fake.gsoMsgs != 1 {
		t.Fatalf("%d GSO sends tried after the first failed", fake.gsoMsgs-1)
	}
	q.reset()
	want = want[:0]
	for i := 0; i < 20; i++ {
		d := datagram(i, 1402)
		q.add(d, addrOf(dst), nil)
		want = append(want, d)
	}
	check = receive(t, dst, want)
	b.flush(&q, noFail(t))
	check()
	if fake.gsoMsgs != 1 {
		t.Fatal("GSO tried again after it was found not to work")
	}
}

// A datagram the kernel refuses (an IPv6 address on an IPv4 socket) is
// reported against its sender, GSO is kept, and the datagrams around it
// go out in order.
func TestSendQueueError(t *testing.T) {
	src, dst := udpListen(t, "127.0.0.1:0"), udpListen(t, "127.0.0.1:0")
	b := newBatchConn(src)
	gso := b.gso
	var q sendQueue
	var want [][]byte
	bad := unsafe.Pointer(new(byte))
	for i := 0; i < 30; i++ {
		d := datagram(i, 1402)
		if i == 10 || i == 11 {
			q.add(d, netip.MustParseAddrPort("[::1]:9"), bad)
			continue
		}
		q.add(d, addrOf(dst), nil)
		want = append(want, d)
	}
	var failed int
	check := receive(t, dst, want)
	b.flush(&q, func(tag unsafe.Pointer, err error) {
		if tag != bad {
			t.Errorf("a good datagram failed: %v", err)
		}
		failed++
	})
	check()
	if failed != 2 {
		t.Fatalf("%d failures reported, want 2", failed)
	}
	if b.gso != gso {
		t.Fatal("a bad address turned GSO off")
	}
}

// Through libutp: a transfer between two sockets leaves in batches, the
// queue never holds more than maxQueuedDatagrams, and every byte comes.
func TestSendQueueThroughLibutp(t *testing.T) {
	s, err := NewSocket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	high := 0
	// Set under the lock: other tests' sockets may still be sending.
	mu.Lock()
	queueHighWater = func(n int) {
		if n > high {
			high = n
		}
	}
	mu.Unlock()
	defer func() {
		mu.Lock()
		queueHighWater = nil
		mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := s.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c1, err := s.DialContext(ctx, "", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	var c2 net.Conn
	select {
	case c2 = <-accepted:
	case <-ctx.Done():
		t.Fatal("no accept")
	}
	defer c2.Close()
	data := make([]byte, 8<<20)
	rand.Read(data)
	batched := batchDatagrams.Load()
	errc := make(chan error, 1)
	go func() {
		_, err := c1.Write(data)
		errc <- err
	}()
	got := make([]byte, len(data))
	c2.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c2, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data differ")
	}
	mu.Lock()
	h := high
	mu.Unlock()
	if h > maxQueuedDatagrams || h == 0 {
		t.Fatalf("the queue held up to %d datagrams (bound %d)", h, maxQueuedDatagrams)
	}
	if runtime.GOOS == "linux" && batchDatagrams.Load() == batched {
		t.Fatal("nothing was sent in batches")
	}
	t.Logf("queue up to %d datagrams; %d sent in batches", h, batchDatagrams.Load()-batched)
}

// Grouping for GSO: runs to one address, of one size but a shorter last,
// within maxGSOSegments and maxGSOBytes; each datagram alone without GSO.
func TestSendQueueGroup(t *testing.T) {
	a, b := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")
	var q sendQueue
	for i := 0; i < 200; i++ {
		n, to := 1402, a
		switch {
		case i == 120:
			n = 500
		case i >= 150 && i < 180:
			n = 1000 // maxGSOSegments of these fit in maxGSOBytes
		case i >= 180:
			n, to = 100, b
		}
		q.add(make([]byte, n), to, nil)
	}
	bc := &batchConn{gso: true}
	ms := bc.group(&q, nil, 0)
	next := 0
	for _, m := range ms {
		if m.first != next || m.end <= m.first {
			t.Fatalf("message %+v after datagram %d", m, next)
		}
		next = m.end
		ds := q.ds[m.first:m.end]
		bytes := 0
		for i, d := range ds {
			bytes += d.n
			if d.to != ds[0].to || d.n > ds[0].n || d.n < ds[0].n && i != len(ds)-1 {
				t.Fatalf("message %+v mixes datagrams: %+v", m, ds)
			}
		}
		if len(ds) > maxGSOSegments || bytes > maxGSOBytes {
			t.Fatalf("message %+v: %d datagrams, %d bytes", m, len(ds), bytes)
		}
		if (len(ds) > 1) != (m.seg != 0) || m.seg != 0 && m.seg != ds[0].n {
			t.Fatalf("message %+v: segment size %d", m, m.seg)
		}
	}
	if next != len(q.ds) {
		t.Fatalf("messages end at %d of %d datagrams", next, len(q.ds))
	}
	// 120 full ones (46 to a message) and the short one after them: 3;
	// 29 full and the first of 1000 bytes: 1; the other 29: 1; 20 to b: 1.
	if len(ms) != 6 {
		t.Fatalf("%d messages: %+v", len(ms), ms)
	}
	bc.gso = false
	if ms := bc.group(&q, nil, 0); len(ms) != len(q.ds) {
		t.Fatalf("without GSO, %d messages for %d datagrams", len(ms), len(q.ds))
	}
}

// A datagram whose libutp socket was destroyed before the queue was sent
// is reported against no socket (a new one may have its address), and
// the others still against theirs.
func TestSendQueueForget(t *testing.T) {
	src := udpListen(t, "127.0.0.1:0")
	b := newBatchConn(src)
	gone, live := unsafe.Pointer(new(byte)), unsafe.Pointer(new(byte))
	var q sendQueue
	bad := netip.MustParseAddrPort("[::1]:9") // refused on an IPv4 socket
	q.add(datagram(0, 100), bad, gone)
	q.add(datagram(1, 100), bad, live)
	q.add(datagram(2, 100), bad, gone)
	q.forget(gone)
	var got []unsafe.Pointer
	b.flush(&q, func(tag unsafe.Pointer, err error) { got = append(got, tag) })
	if len(got) != 3 || got[0] != nil || got[1] != live || got[2] != nil {
		t.Fatalf("failures reported against %v, want [nil %p nil]", got, live)
	}
}

// routeMTUSender sends like mmsgSender, one message a call, but refuses
// GSO messages to one address as the kernel does where that address's
// route has an MTU below the segment size (EINVAL), and counts the GSO
// messages tried to each address.
type routeMTUSender struct {
	real    batchSender
	lowMTU  netip.Addr
	gsoMsgs map[netip.Addr]int
}

func (f *routeMTUSender) send(q *sendQueue, ms []batchMsg) (int, error) {
	if ms[0].seg != 0 {
		to := q.ds[ms[0].first].to.Addr()
		f.gsoMsgs[to]++
		if to == f.lowMTU {
			return -1, syscall.EINVAL
		}
	}
	return f.real.send(q, ms[:1])
}

// A GSO send refused for one destination's route (its path MTU below our
// datagrams', as behind a tunnel or after an ICMP "fragmentation needed"
// anyone can send) stops GSO to that address only: the others keep it,
// until maxNoGSOAddrs addresses were refused.
func TestSendQueueGSORouteFallback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("batched sends are Linux's")
	}
	src := udpListen(t, "127.0.0.1:0")
	low, ok := udpListen(t, "127.0.0.2:0"), udpListen(t, "127.0.0.1:0")
	b := newBatchConn(src)
	fake := &routeMTUSender{real: b.batch, lowMTU: addrOf(low).Addr(), gsoMsgs: map[netip.Addr]int{}}
	b.batch, b.gso = fake, true
	for round := 0; round < 2; round++ {
		var q sendQueue
		var wl, wo [][]byte
		for i := 0; i < 20; i++ {
			d := datagram(i, 1402)
			q.add(d, addrOf(low), nil)
			wl = append(wl, d)
		}
		for i := 0; i < 20; i++ {
			d := datagram(i, 1402)
			q.add(d, addrOf(ok), nil)
			wo = append(wo, d)
		}
		checkLow, checkOK := receive(t, low, wl), receive(t, ok, wo)
		b.flush(&q, noFail(t))
		checkLow()
		checkOK()
	}
	if !b.gso {
		t.Fatal("one address's route turned GSO off for the socket")
	}
	if n := fake.gsoMsgs[addrOf(low).Addr()]; n != 1 {
		t.Fatalf("%d GSO sends tried to the low-MTU address, want 1", n)
	}
	if n := fake.gsoMsgs[addrOf(ok).Addr()]; n != 2 {
		t.Fatalf("%d GSO sends to the other address, want 2", n)
	}
	// Past maxNoGSOAddrs refused addresses, GSO goes off for the socket.
	for len(b.noGSO) < maxNoGSOAddrs {
		b.noGSO[netip.AddrFrom4([4]byte{10, byte(len(b.noGSO) >> 8), byte(len(b.noGSO)), 1})] = struct{}{}
	}
	fake.lowMTU = addrOf(ok).Addr()
	var q sendQueue
	var want [][]byte
	for i := 0; i < 20; i++ {
		d := datagram(i, 1402)
		q.add(d, addrOf(ok), nil)
		want = append(want, d)
	}
	check := receive(t, ok, want)
	b.flush(&q, noFail(t))
	check()
	if b.gso || len(b.noGSO) > maxNoGSOAddrs {
		t.Fatalf("GSO on (%v) with %d addresses refused (bound %d)", b.gso, len(b.noGSO), maxNoGSOAddrs)
	}
}
