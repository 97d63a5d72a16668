#ifndef __LOOPBACK_MTU_H__
#define __LOOPBACK_MTU_H__

// The UDP payload of a datagram to a loopback address: the most an IPv6
// datagram carries unfragmented on a 65536-byte loopback MTU (65536 less
// 40 bytes of IPv6 and 8 of UDP header), which IPv4's limit exceeds.
#ifndef UTP_LOOPBACK_MTU
#define UTP_LOOPBACK_MTU 65488
#endif

#endif
