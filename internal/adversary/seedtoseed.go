package adversary

import (
	"node/peer/wire"
)

// PoseAsSeed announces every one of pieces pieces (a full bitfield, then
// a BEP 10 handshake with its listen port) and reads until the other side
// hangs up: a seed that connects to, or is dialled by, another seed, a
// connection neither side can use. It returns the error that ended it.
func PoseAsSeed(p *Peer, pieces, port int) error {
	bits := wire.NewBits(pieces)
	for i := range pieces {
		bits.Set(i)
	}
	if err := p.Send(&wire.Message{Type: wire.Bitfield, Bitfield: bits}); err != nil {
		return err
	}
	if err := p.SendExtHandshake(wire.ExtendedHandshake{P: port}); err != nil {
		return err
	}
	return p.Drain()
}
