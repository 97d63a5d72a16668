package utp

/*
#include "utp.h"
#include "loopback_mtu.h"
uint64_t utp_loopback_get_udp_mtu(utp_callback_arguments *);
*/
import "C"

import (
	"net"
	"unsafe"
)

// LoopbackUDPMTU is the UDP payload libutp may put in one datagram to a
// loopback address (127.0.0.0/8, ::1, or IPv4-mapped 127.x): the most
// an IPv6 datagram carries unfragmented on Linux's loopback interface
// (MTU 65536), and less than IPv4's limit. Other addresses get libutp's
// default, which assumes an Ethernet path (1402 bytes for IPv4).
const LoopbackUDPMTU = C.UTP_LOOPBACK_MTU

// udpMTU is what libutp is told of the UDP MTU towards addr.
func udpMTU(addr *net.UDPAddr) int {
	rsa, sal := netAddrToLibSockaddr(addr)
	var args C.utp_callback_arguments
	args.callback_type = C.UTP_GET_UDP_MTU
	*(**C.struct_sockaddr)(unsafe.Pointer(&args.anon0[0])) = (*C.struct_sockaddr)(unsafe.Pointer(&rsa))
	*(*C.socklen_t)(unsafe.Pointer(&args.anon1[0])) = sal
	return int(C.utp_loopback_get_udp_mtu(&args))
}

// datagramsSent is how many datagrams the socket's libutp context sent
// of at most 1400 bytes (small) and of more (big).
func (s *Socket) datagramsSent() (small, big int) {
	mu.Lock()
	defer mu.Unlock()
	st := C.utp_get_context_stats(s.ctx.asCPtr())
	for i := 0; i < 4; i++ {
		small += int(st._nraw_send[i])
	}
	return small, int(st._nraw_send[4])
}
