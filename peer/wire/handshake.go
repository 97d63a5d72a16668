package wire

import (
	"bytes"
	"fmt"
)

// Protocol is the BEP 3 protocol string that opens every handshake.
const Protocol = "BitTorrent protocol"

// HandshakeLen is the fixed length of a BEP 3 handshake:
// 1 (pstrlen) + 19 (pstr) + 8 (reserved) + 20 (info hash) + 20 (peer id).
const HandshakeLen = 1 + len(Protocol) + 8 + 20 + 20

// Reserved is the handshake's 8 reserved bytes, used as feature bits.
type Reserved [8]byte

// Bit positions, as byte index and mask, from the BEPs that assign them.
const (
	extensionsByte, extensionsMask = 5, 0x10 // BEP 10
	dhtByte, dhtMask               = 7, 0x01 // BEP 5
	fastByte, fastMask             = 7, 0x04 // BEP 6
)

// Extensions reports whether the peer supports the BEP 10 extension protocol.
func (r Reserved) Extensions() bool { return r[extensionsByte]&extensionsMask != 0 }

// DHT reports whether the peer runs a BEP 5 DHT node and may send a port
// message.
func (r Reserved) DHT() bool { return r[dhtByte]&dhtMask != 0 }

// Fast reports whether the peer supports the BEP 6 Fast extension. It is
// in force on a connection only when both handshakes set the bit.
func (r Reserved) Fast() bool { return r[fastByte]&fastMask != 0 }

// WithFast returns r with the Fast extension bit set (on) or cleared.
func (r Reserved) WithFast(on bool) Reserved {
	if on {
		r[fastByte] |= fastMask
	} else {
		r[fastByte] &^= fastMask
	}
	return r
}

// DefaultReserved returns the bits we advertise: extensions, DHT and the
// Fast extension.
func DefaultReserved() Reserved {
	var r Reserved
	r[extensionsByte] |= extensionsMask
	r[dhtByte] |= dhtMask
	r[fastByte] |= fastMask
	return r
}

// Handshake is the BEP 3 handshake each side sends first.
type Handshake struct {
	Reserved Reserved
	InfoHash [20]byte
	PeerID   [20]byte
}

// Append appends the 68-byte wire form of h to b.
func (h Handshake) Append(b []byte) []byte {
	b = append(b, byte(len(Protocol)))
	b = append(b, Protocol...)
	b = append(b, h.Reserved[:]...)
	b = append(b, h.InfoHash[:]...)
	return append(b, h.PeerID[:]...)
}

// ParseHandshake parses exactly HandshakeLen bytes. Anything but the
// standard protocol string is rejected: a different pstr means a different
// protocol (or an encrypted stream), and guessing would desynchronise the
// stream.
func ParseHandshake(b []byte) (Handshake, error) {
	var h Handshake
	if len(b) != HandshakeLen {
		return h, fmt.Errorf("wire: %w: length %d, want %d", ErrHandshake, len(b), HandshakeLen)
	}
	if int(b[0]) != len(Protocol) {
		return h, fmt.Errorf("wire: %w: pstrlen %d, want %d", ErrHandshake, b[0], len(Protocol))
	}
	if pstr := b[1 : 1+len(Protocol)]; !bytes.Equal(pstr, []byte(Protocol)) {
		return h, fmt.Errorf("wire: %w: protocol string %q", ErrHandshake, pstr)
	}
	rest := b[1+len(Protocol):]
	copy(h.Reserved[:], rest[:8])
	copy(h.InfoHash[:], rest[8:28])
	copy(h.PeerID[:], rest[28:48])
	return h, nil
}
