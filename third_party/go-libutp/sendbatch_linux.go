package utp

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
)

// udpSegment is Linux's UDP_SEGMENT (linux/udp.h): a socket option and a
// control message of level SOL_UDP whose value, a uint16, is the size
// of the datagrams the kernel cuts a send into (UDP GSO, Linux 4.18).
const udpSegment = 103

// mmsgSender sends with sendmmsg, each message a datagram or, with a
// UDP_SEGMENT control message, a run of them.
type mmsgSender struct {
	pc    *ipv4.PacketConn // sendmmsg takes either family's addresses
	ms    []ipv4.Message
	bufs  [][1][]byte
	addrs []net.UDPAddr
	ips   [][16]byte
	oobs  [][]byte
}

func newBatchConn(pc net.PacketConn) *batchConn {
	b := &batchConn{pc: pc}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return b
	}
	b.batch = &mmsgSender{pc: ipv4.NewPacketConn(uc)}
	b.gso = gsoAvailable(uc)
	return b
}

// gsoAvailable asks the kernel whether it knows the UDP_SEGMENT option.
func gsoAvailable(uc *net.UDPConn) bool {
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_UDP, udpSegment)
	}); err != nil {
		return false
	}
	return serr == nil
}

func (s *mmsgSender) send(q *sendQueue, bms []batchMsg) (int, error) {
	for len(s.ms) < len(bms) {
		s.ms = append(s.ms, ipv4.Message{})
		s.bufs = append(s.bufs, [1][]byte{})
		s.addrs = append(s.addrs, net.UDPAddr{})
		s.ips = append(s.ips, [16]byte{})
		s.oobs = append(s.oobs, make([]byte, syscall.CmsgSpace(2)))
	}
	for i, bm := range bms {
		first, last := q.ds[bm.first], q.ds[bm.end-1]
		s.bufs[i][0] = q.buf[first.off : last.off+last.n]
		a := first.to.Addr()
		s.ips[i] = a.As16()
		ip := s.ips[i][:]
		if a.Is4() {
			ip = ip[12:]
		}
		s.addrs[i] = net.UDPAddr{IP: ip, Port: int(first.to.Port()), Zone: a.Zone()}
		m := &s.ms[i]
		*m = ipv4.Message{Buffers: s.bufs[i][:], Addr: &s.addrs[i]}
		if bm.seg != 0 {
			oob := s.oobs[i]
			h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
			h.Level = syscall.IPPROTO_UDP
			h.Type = udpSegment
			h.SetLen(syscall.CmsgLen(2))
			binary.NativeEndian.PutUint16(oob[syscall.CmsgLen(0):], uint16(bm.seg))
			m.OOB = oob
		}
	}
	return s.pc.WriteBatch(s.ms[:len(bms)], 0)
}
