package adversary

import (
	"fmt"
	"net/netip"
	"strings"

	"node/peer/wire"
)

// BogusAddrHandshake is a BEP 10 handshake payload that advertises port
// and carries BEP 7 ipv4 and ipv6 fields, and a yourip, of lengths no
// address has (3, 100 and 1 bytes). A receiver that trusts the lengths
// reads past them or takes garbage for an address.
func BogusAddrHandshake(port int) []byte {
	return fmt.Appendf(nil, "d1:md11:ut_metadatai0ee1:pi%de4:ipv43:\x7f\x00\x004:ipv6100:%s6:yourip1:ze",
		port, strings.Repeat("\xfe", 100))
}

// addrHandshake is a BEP 10 handshake payload naming v4 and v6 as the
// sender's own addresses.
func addrHandshake(port int, v4, v6 netip.Addr) []byte {
	h := wire.ExtendedHandshake{P: port, IPv4: string(v4.AsSlice()), IPv6: string(v6.AsSlice())}
	b, _ := h.Append(nil)
	return b
}

// FloodAddrHints sends the bogus handshake, then n more handshakes, each
// naming other "own" addresses (base4+i, base6+i), as if every new
// handshake could add candidates for the receiver to dial.
func FloodAddrHints(p *Peer, port, n int, base4, base6 netip.Addr) error {
	if err := p.sendExt(0, BogusAddrHandshake(port)); err != nil {
		return err
	}
	v4, v6 := base4, base6
	for range n {
		if err := p.sendExt(0, addrHandshake(port, v4, v6)); err != nil {
			return err
		}
		v4, v6 = v4.Next(), v6.Next()
	}
	return nil
}
