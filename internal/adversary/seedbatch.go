package adversary

import (
	"node/peer/wire"
)

// PoseAsSeedOneWrite is PoseAsSeed with the full bitfield and the BEP 10
// handshake (listen port port) in one write, as clients send them: the
// other side reads both in one go, the handshake after the bitfield that
// shows it a seed.
func PoseAsSeedOneWrite(p *Peer, pieces, port int) error {
	bits := wire.NewBits(pieces)
	for i := range pieces {
		bits.Set(i)
	}
	h, err := wire.ExtendedHandshake{P: port}.Append(nil)
	if err != nil {
		return err
	}
	b := (&wire.Message{Type: wire.Bitfield, Bitfield: bits}).Append(nil)
	b = (&wire.Message{Type: wire.Extended, ExtendedID: 0, Payload: h}).Append(b)
	if err := p.SendRaw(b); err != nil {
		return err
	}
	return p.Drain()
}
