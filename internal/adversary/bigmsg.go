package adversary

import (
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"

	"node/peer/wire"
)

// Streams of large messages, sent as fast as the victim reads them: a
// victim that queues what it has read but not yet handled by count, not
// by bytes, holds thousands of them.

// BitfieldMsg is an encoded bitfield message of size bytes, every piece
// set.
func BitfieldMsg(size int) []byte {
	bf := make([]byte, size)
	for i := range bf {
		bf[i] = 0xff
	}
	return (&wire.Message{Type: wire.Bitfield, Bitfield: bf}).Append(nil)
}

// JunkExtHandshakeMsg is an encoded BEP 10 extended handshake of about
// size bytes of payload: a valid dictionary that only carries junk under
// a key nobody knows. BEP 10 allows a handshake to be sent again at any
// time, so a victim cannot drop a peer for repeating it.
func JunkExtHandshakeMsg(size int) []byte {
	n := max(0, size-len("d4:junk:e")-len(strconv.Itoa(size)))
	payload := fmt.Appendf(nil, "d4:junk%d:", n)
	payload = append(payload, bytes.Repeat([]byte{'x'}, n)...)
	payload = append(payload, 'e')
	return (&wire.Message{Type: wire.Extended, ExtendedID: 0, Payload: payload}).Append(nil)
}

// Stream writes msg over and over until writing fails (the victim hung up
// or the connection was closed) or stop is closed, adding the bytes
// written to sent (if not nil). It sends a few copies per write, so a
// victim that reads fast gets them fast.
func (p *Peer) Stream(msg []byte, sent *atomic.Int64, stop <-chan struct{}) error {
	per := max(1, (64<<10)/len(msg))
	buf := make([]byte, 0, per*len(msg))
	for range per {
		buf = append(buf, msg...)
	}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		k, err := p.Conn.Write(buf)
		if sent != nil {
			sent.Add(int64(k))
		}
		if err != nil {
			return err
		}
	}
}
