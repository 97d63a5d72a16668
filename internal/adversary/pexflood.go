package adversary

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"node/peer/wire"
)

// Misbehaviours around BEP 11 peer exchange: a peer that sends ut_pex
// messages more often than once a minute, with more contacts than the 50
// a message may hold, naming one victim host on many ports, or hosts on
// our LAN and our own machine; and one that sends messages that do not
// parse.

// PexID is the ut_pex ID the adversary's handshakes announce.
const PexID = 4

// PexHandshake is a BEP 10 handshake that offers ut_pex under PexID and,
// with port non-zero, says the peer listens there.
func PexHandshake(port int) wire.ExtendedHandshake {
	return wire.ExtendedHandshake{M: map[string]int{wire.ExtPexName: PexID}, P: port}
}

// TheirPexID reads until the other side's BEP 10 handshake, within d,
// and returns its ut_pex ID (0: it takes none).
func (p *Peer) TheirPexID(d time.Duration) (int, error) {
	id := -1
	err := p.ReadUntil(d, func(m wire.Message) bool {
		if m.Type != wire.Extended || m.ExtendedID != 0 {
			return false
		}
		if h, err := wire.ParseExtendedHandshake(m.Payload); err == nil {
			id = h.M[wire.ExtPexName]
		} else {
			id = 0
		}
		return true
	})
	return id, err
}

// SendPex sends a ut_pex message with added and dropped to the other
// side's ID id. Unlike wire.Pex.Append it writes any number of contacts:
// a flooder does not stop at a bound.
func (p *Peer) SendPex(id int, added []wire.PexPeer, dropped []netip.AddrPort) error {
	var a4, f4, a6, f6, d4, d6 []byte
	put := func(b []byte, a netip.AddrPort) []byte {
		b = append(b, a.Addr().AsSlice()...)
		return append(b, byte(a.Port()>>8), byte(a.Port()))
	}
	for _, pp := range added {
		if pp.Addr.Addr().Is4() {
			a4, f4 = put(a4, pp.Addr), append(f4, byte(pp.Flags))
		} else {
			a6, f6 = put(a6, pp.Addr), append(f6, byte(pp.Flags))
		}
	}
	for _, a := range dropped {
		if a.Addr().Is4() {
			d4 = put(d4, a)
		} else {
			d6 = put(d6, a)
		}
	}
	b, err := bencode.Marshal(map[string]string{
		"added": string(a4), "added.f": string(f4), "added6": string(a6), "added6.f": string(f6),
		"dropped": string(d4), "dropped6": string(d6),
	})
	if err != nil {
		return err
	}
	return p.SendRawPex(id, b)
}

// SendRawPex sends payload as a ut_pex message to ID id, as it is.
func (p *Peer) SendRawPex(id int, payload []byte) error {
	return p.Send(&wire.Message{Type: wire.Extended, ExtendedID: uint8(id), Payload: payload})
}

// FloodPex sends the same ut_pex message n times back to back and
// returns how many were written before the connection failed (the other
// side dropped us) and the error that stopped it, if any.
func (p *Peer) FloodPex(id, n int, added []wire.PexPeer) (int, error) {
	for i := range n {
		if err := p.SendPex(id, added, nil); err != nil {
			return i, err
		}
	}
	return n, nil
}

// Ports lists n contacts on ip, from port first up: one host named many
// times, which a peer on it does not need and a victim does not want.
func Ports(ip netip.Addr, first uint16, n int) []wire.PexPeer {
	out := make([]wire.PexPeer, n)
	for i := range out {
		out[i] = wire.PexPeer{Addr: netip.AddrPortFrom(ip, first+uint16(i))}
	}
	return out
}

// Hosts lists n contacts, one per address counted up from ip, all on port.
func Hosts(ip netip.Addr, port uint16, n int) []wire.PexPeer {
	out := make([]wire.PexPeer, n)
	for i := range out {
		out[i] = wire.PexPeer{Addr: netip.AddrPortFrom(ip, port)}
		ip = ip.Next()
	}
	return out
}

// MalformedPex are ut_pex payloads that must not parse: a contact list
// that is not whole entries, flags that do not match it, keys of the
// wrong type, not a dictionary, trailing garbage, a lying length.
var MalformedPex = [][]byte{
	[]byte("d5:added5:abcdee"),
	[]byte("d6:added67:abcdefge"),
	[]byte("d5:added6:abcdef7:added.f2:\x00\x00e"),
	[]byte("d5:addedi6ee"),
	[]byte("l5:addede"),
	[]byte("d5:added6:abcdefee"),
	[]byte("d5:added99999999:e"),
	bytes.Repeat([]byte("d"), 500),
}
