package utp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// cmsg is one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, syscall.CmsgSpace(len(data)))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(syscall.CmsgLen(len(data)))
	copy(b[syscall.CmsgLen(0):], data)
	return b
}

func groCmsg(seg int32) []byte {
	var d [4]byte
	binary.NativeEndian.PutUint32(d[:], uint32(seg))
	return cmsg(syscall.IPPROTO_UDP, udpGRO, d[:])
}

// The UDP_GRO control message is found among others; one that is cut
// short, overruns its buffer or is too short for its int drops the
// message, as does a truncated message.
func TestAppendMessage(t *testing.T) {
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	msg := make([]byte, 3500)
	other := cmsg(syscall.IPPROTO_IP, syscall.IP_TTL, []byte{64, 0, 0, 0})
	for _, tc := range []struct {
		name  string
		oob   []byte
		flags int
		want  int // datagrams; -1: dropped
	}{
		{"no cmsg", nil, 0, 1},
		{"gro", groCmsg(1000), 0, 4},
		{"gro after another", append(append([]byte(nil), other...), groCmsg(1000)...), 0, 4},
		{"gro before another", append(groCmsg(500), other...), 0, 7},
		{"other only", other, 0, 1},
		{"gro zero", groCmsg(0), 0, 1},
		{"gro negative", groCmsg(-1000), 0, 1},
		{"gro larger", groCmsg(1 << 20), 0, 1},
		{"gro tiny", groCmsg(1), 0, -1},
		{"gro short data", cmsg(syscall.IPPROTO_UDP, udpGRO, []byte{1, 2}), 0, -1},
		{"header cut", groCmsg(1000)[:syscall.CmsgLen(0)-1], 0, -1},
		{"data cut", groCmsg(1000)[:syscall.CmsgLen(0)+2], 0, -1},
		{"truncated", groCmsg(1000), syscall.MSG_TRUNC, -1},
		{"cmsg truncated", nil, syscall.MSG_CTRUNC, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dropped := groDropped.Value()
			ds := appendMessage(nil, msg, tc.oob, tc.flags, addr)
			if tc.want < 0 {
				if len(ds) != 0 || groDropped.Value() != dropped+1 {
					t.Fatalf("%d datagrams kept, %d drops counted", len(ds), groDropped.Value()-dropped)
				}
				return
			}
			if len(ds) != tc.want {
				t.Fatalf("%d datagrams, want %d", len(ds), tc.want)
			}
		})
	}
}

func FuzzGROMessage(f *testing.F) {
	f.Add([]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"), []byte(nil), 0)
	f.Add(make([]byte, 3500), groCmsg(1000), 0)
	f.Add(make([]byte, 3500), groCmsg(1), 0)
	f.Add(make([]byte, 100), groCmsg(-7), 0)
	f.Add(make([]byte, 100), append(cmsg(syscall.IPPROTO_IP, syscall.IP_TTL, []byte{1}), groCmsg(30)...), 0)
	f.Add(make([]byte, 100), groCmsg(30)[:5], 0)
	f.Add(make([]byte, 100), groCmsg(30), syscall.MSG_TRUNC)
	f.Fuzz(func(t *testing.T, b, oob []byte, flags int) {
		if len(b) > recvBufferSize || len(oob) > 1024 {
			return
		}
		ds := appendMessage(nil, b, oob, flags, nil)
		if len(ds) > maxGROSegments {
			t.Fatalf("%d datagrams from one message", len(ds))
		}
		if len(ds) == 0 {
			return
		}
		var joined []byte
		for i, d := range ds {
			if i > 0 && i < len(ds)-1 && len(d.b) != len(ds[0].b) {
				t.Fatalf("datagram %d: %d bytes, the first %d", i, len(d.b), len(ds[0].b))
			}
			joined = append(joined, d.b...)
		}
		if !bytes.Equal(joined, b) {
			t.Fatal("datagrams are not the message in order")
		}
	})
}

// gsoSend sends b from src to dst as datagrams of seg bytes in one GSO
// send, or skips the test where the kernel has no UDP GSO.
func gsoSend(t *testing.T, src, dst *net.UDPConn, b []byte, seg int) {
	t.Helper()
	oob := make([]byte, syscall.CmsgSpace(2))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = syscall.IPPROTO_UDP, udpSegment
	h.SetLen(syscall.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[syscall.CmsgLen(0):], uint16(seg))
	if _, _, err := src.WriteMsgUDP(b, oob, dst.LocalAddr().(*net.UDPAddr)); err != nil {
		if errors.Is(err, syscall.ENOPROTOOPT) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EIO) {
			t.Skipf("no UDP GSO send here: %v", err)
		}
		t.Fatal(err)
	}
}

// A GSO send over loopback to a socket read by the GRO reader arrives as
// one message, which comes back as its datagrams, in order, from the
// sender, followed by an ordinary datagram.
func TestGROReadLoopback(t *testing.T) {
	src, dst := udpListen(t, "127.0.0.1:0"), udpListen(t, "127.0.0.1:0")
	r, ok := newRecvBatch(dst).(*groReader)
	if !ok {
		t.Fatal("no GRO reader for a UDP socket")
	}
	if !enableGRO(dst) {
		t.Skip("the kernel has no UDP_GRO")
	}
	msg := make([]byte, 10*1000+300)
	for i := range msg {
		msg[i] = byte(i / 1000)
	}
	gsoSend(t, src, dst, msg, 1000)
	if _, err := src.WriteTo([]byte("after"), dst.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	coalesced := groCoalesced.Value()
	if err := dst.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []received
	msgs := 0
	for len(got) < 12 {
		n, ds, err := r.read(nil)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		msgs += n
		for _, d := range ds {
			got = append(got, received{append([]byte(nil), d.b...), d.addr})
		}
	}
	if len(got) != 12 {
		t.Fatalf("%d datagrams, want 12", len(got))
	}
	for i, d := range got {
		want := []byte("after")
		if i < 11 {
			end := (i + 1) * 1000
			if end > len(msg) {
				end = len(msg)
			}
			want = msg[i*1000 : end]
		}
		if !bytes.Equal(d.b, want) {
			t.Fatalf("datagram %d: %d bytes starting %x, want %d starting %x", i, len(d.b), d.b[:1], len(want), want[:1])
		}
		if d.addr.String() != src.LocalAddr().String() {
			t.Fatalf("datagram %d from %v, want %v", i, d.addr, src.LocalAddr())
		}
	}
	if groCoalesced.Value() == coalesced {
		t.Skipf("datagrams right, but the kernel delivered the GSO send as %d messages: the split was not exercised", msgs)
	}
	if msgs != 2 {
		t.Fatalf("%d messages, want the GSO send whole and the datagram after", msgs)
	}
}

// The reader holds maxNumBuffers buffers of recvBufferSize, and a full
// read of coalesced messages yields at most maxGROSegments datagrams
// each.
func TestRecvBatchBound(t *testing.T) {
	r := newRecvBatch(udpListen(t, "127.0.0.1:0")).(*groReader)
	total := 0
	for _, m := range r.ms {
		for _, b := range m.Buffers {
			total += cap(b)
		}
	}
	if len(r.ms) != maxNumBuffers || total != maxNumBuffers*recvBufferSize || total > 1<<20 {
		t.Fatalf("%d messages, %d bytes of buffers", len(r.ms), total)
	}
	var ds []received
	for range r.ms {
		ds = appendMessage(ds, make([]byte, recvBufferSize), groCmsg(1), 0, nil)
		ds = appendMessage(ds, make([]byte, recvBufferSize), groCmsg(recvBufferSize/maxGROSegments), 0, nil)
	}
	if len(ds) > maxNumBuffers*maxGROSegments {
		t.Fatalf("%d datagrams from one read", len(ds))
	}
}

// Datagrams that are not uTP (the DHT's) sent in one GSO send reach a
// Socket's ReadFrom each as itself, in order, from the sender.
func TestSocketReadsCoalescedNonUtp(t *testing.T) {
	s, err := NewSocket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := udpListen(t, "127.0.0.1:0")
	dst := s.pc.(*net.UDPConn)
	msg := make([]byte, 0, 5*300)
	for i := 0; i < 5; i++ {
		d := append([]byte("d1:t1:"), byte('a'+i), 'e')
		msg = append(msg, append(d, make([]byte, 300-len(d))...)...)
	}
	gsoSend(t, src, dst, msg[:len(msg)-100], 300)
	type read struct {
		b    []byte
		addr net.Addr
		err  error
	}
	reads := make(chan read)
	go func() {
		for {
			b := make([]byte, 2000)
			n, a, err := s.ReadFrom(b)
			reads <- read{b[:n], a, err}
			if err != nil {
				return
			}
		}
	}()
	deadline := time.After(10 * time.Second)
	for i := 0; i < 5; i++ {
		want := msg[i*300 : (i+1)*300]
		if i == 4 {
			want = want[:200]
		}
		select {
		case r := <-reads:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !bytes.Equal(r.b, want) || r.addr.String() != src.LocalAddr().String() {
				t.Fatalf("datagram %d: %d bytes %q from %v, want %d %q from %v", i, len(r.b), r.b[:8], r.addr, len(want), want[:8], src.LocalAddr())
			}
		case <-deadline:
			t.Fatalf("datagram %d not read", i)
		}
	}
	s.Close()
	for r := range reads {
		if r.err != nil {
			break
		}
		t.Fatalf("extra datagram %q", r.b)
	}
}
