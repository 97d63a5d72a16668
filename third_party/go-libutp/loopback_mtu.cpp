// The UDP MTU libutp is told for a peer: the loopback interface's for a
// loopback address, libutp's default (a conservative Ethernet path)
// otherwise. Every datagram costs a system call and a trip through the
// kernel's stack at each end, so on loopback, whose MTU is 64 KiB, the
// default's 1402-byte datagrams spend most of the CPU a transfer takes
// on per-datagram overhead. libutp's MTU discovery still probes down
// from this ceiling if a datagram this large is lost.
#include <string.h>
#include "utp_types.h"
#include "utp.h"
#include "utp_utils.h"
#include "loopback_mtu.h"

#ifdef WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#endif


static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		return memcmp(b, loop6, 16) == 0 || (memcmp(b, mapped, 12) == 0 && b[12] == 127);
	}
	return false;
}

extern "C" uint64 utp_loopback_get_udp_mtu(utp_callback_arguments *args)
{
	if (args->address && is_loopback(args->address))
		return UTP_LOOPBACK_MTU;
	return utp_default_get_udp_mtu(args);
}
