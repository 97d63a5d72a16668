package utp

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
)

// udpGRO is Linux's UDP_GRO (linux/udp.h), a socket option of level
// SOL_UDP: with it set the kernel may deliver datagrams of one sender
// and size as one message (a GSO send over loopback arrives whole), with
// a UDP_GRO control message giving their size as an int.
const udpGRO = 104

// groReader reads with recvmmsg, each message with room for the UDP_GRO
// control message, and splits coalesced messages into their datagrams.
type groReader struct {
	pc   *ipv4.PacketConn // recvmmsg returns either family's addresses
	ms   []ipv4.Message
	bufs [][1][]byte
}

func newRecvBatch(pc net.PacketConn) recvBatch {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return newMmsgReader(pc)
	}
	enableGRO(uc)
	r := &groReader{
		pc:   ipv4.NewPacketConn(uc),
		ms:   make([]ipv4.Message, maxNumBuffers),
		bufs: make([][1][]byte, maxNumBuffers),
	}
	for i := range r.ms {
		r.bufs[i][0] = make([]byte, recvBufferSize)
		r.ms[i].Buffers = r.bufs[i][:]
		r.ms[i].OOB = make([]byte, syscall.CmsgSpace(4))
	}
	return r
}

// enableGRO sets UDP_GRO where the kernel knows it (Linux 5.0); without
// it every datagram is its own message, as before.
func enableGRO(uc *net.UDPConn) bool {
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_UDP, udpGRO, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}

func (r *groReader) read(ds []received) (int, []received, error) {
	for i := range r.ms {
		r.ms[i].OOB = r.ms[i].OOB[:cap(r.ms[i].OOB)]
	}
	n, err := r.pc.ReadBatch(r.ms, 0)
	if err != nil {
		return 0, ds, err
	}
	for _, m := range r.ms[:n] {
		ds = appendMessage(ds, m.Buffers[0][:m.N], m.OOB[:m.NN], m.Flags, m.Addr)
	}
	return n, ds, nil
}

// appendMessage appends the datagrams of one received message b with
// control messages oob. A truncated message (or its control message,
// which could hide that b is coalesced) is dropped, as are messages
// that split into too many datagrams.
func appendMessage(ds []received, b, oob []byte, flags int, addr net.Addr) []received {
	if flags&(syscall.MSG_TRUNC|syscall.MSG_CTRUNC) != 0 {
		groDropped.Add(1)
		return ds
	}
	seg, ok := groSegmentSize(oob)
	if !ok {
		groDropped.Add(1)
		return ds
	}
	if seg > 0 && seg < len(b) {
		groCoalesced.Add(1)
	}
	ds, ok = appendSegments(ds, b, seg, addr)
	if !ok {
		groDropped.Add(1)
	}
	return ds
}

// groSegmentSize is the datagram size of the UDP_GRO control message in
// oob, or 0 when there is none. It reports false for control messages
// it cannot read.
func groSegmentSize(oob []byte) (int, bool) {
	seg := 0
	for len(oob) > 0 {
		if len(oob) < syscall.CmsgLen(0) {
			return 0, false
		}
		// Copied out: oob need not be aligned for a Cmsghdr.
		var h syscall.Cmsghdr
		copy((*[syscall.SizeofCmsghdr]byte)(unsafe.Pointer(&h))[:], oob)
		if uint64(h.Len) < uint64(syscall.CmsgLen(0)) || uint64(h.Len) > uint64(len(oob)) {
			return 0, false
		}
		l := int(h.Len)
		data := oob[syscall.CmsgLen(0):l]
		if h.Level == syscall.IPPROTO_UDP && h.Type == udpGRO {
			if len(data) < 4 {
				return 0, false
			}
			seg = int(int32(binary.NativeEndian.Uint32(data)))
		}
		next := syscall.CmsgSpace(l - syscall.CmsgLen(0))
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return seg, true
}
