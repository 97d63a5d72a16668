package adversary

import (
	"errors"
	"time"

	"node/metadata"
	"node/peer/wire"
)

// Misbehaviours around BEP 9 metadata: peers that lie about
// metadata_size, answer requests with junk, send pieces nobody asked for,
// or ask for metadata without ever reading the answers.

// MetaID is the ut_metadata ID the adversary's handshakes announce: what
// the other side must use to reach it.
const MetaID = 3

// MetadataHandshake is a BEP 10 handshake that offers ut_metadata under
// MetaID and claims size (0: the key is left out).
func MetadataHandshake(size int) wire.ExtendedHandshake {
	return wire.ExtendedHandshake{M: map[string]int{wire.ExtMetadataName: MetaID}, MetadataSize: size}
}

// TheirMetaID reads until the other side's BEP 10 handshake, within d,
// and returns its ut_metadata ID (0: it offers none).
func (p *Peer) TheirMetaID(d time.Duration) (int, error) {
	id := -1
	err := p.ReadUntil(d, func(m wire.Message) bool {
		if m.Type != wire.Extended || m.ExtendedID != 0 {
			return false
		}
		h, err := wire.ParseExtendedHandshake(m.Payload)
		if err != nil {
			id = 0
		} else {
			id = h.M[wire.ExtMetadataName]
		}
		return true
	})
	return id, err
}

// SendMetadata sends a ut_metadata message to the other side's ID id.
func (p *Peer) SendMetadata(id int, m metadata.MetadataMsg, data []byte) error {
	b, err := m.Append(nil, data)
	if err != nil {
		return err
	}
	return p.Send(&wire.Message{Type: wire.Extended, ExtendedID: uint8(id), Payload: b})
}

// MetadataServer answers a request for a metadata piece with a
// ut_metadata payload, or nil to stay silent.
type MetadataServer func(piece int) []byte

// HonestMetadata serves raw as an honest peer does.
func HonestMetadata(raw []byte) MetadataServer {
	return func(piece int) []byte { return metadata.ServeMetadata(raw, piece) }
}

// RejectMetadata refuses every request.
func RejectMetadata() MetadataServer {
	return func(piece int) []byte { return metadata.ServeMetadata(nil, piece) }
}

// SilentMetadata ignores every request.
func SilentMetadata() MetadataServer { return func(int) []byte { return nil } }

// JunkMetadata answers with zeros of the right length for metadata of
// size bytes: what a liar about the contents (or the size) sends.
func JunkMetadata(size int) MetadataServer {
	return func(piece int) []byte {
		n := min(metadata.MetadataPieceSize, size-piece*metadata.MetadataPieceSize)
		if piece < 0 || n <= 0 {
			return metadata.ServeMetadata(nil, piece)
		}
		b, _ := metadata.MetadataMsg{Type: metadata.MetadataData, Piece: piece, TotalSize: size}.Append(nil, make([]byte, n))
		return b
	}
}

// ServeMetadata sends a BEP 10 handshake claiming size, then answers the
// other side's ut_metadata requests with serve until the connection
// fails or d passes. It returns the error that ended it.
func (p *Peer) ServeMetadata(size int, serve MetadataServer, d time.Duration) error {
	if err := p.SendExtHandshake(MetadataHandshake(size)); err != nil {
		return err
	}
	theirs := 0
	var werr error
	err := p.ReadUntil(d, func(m wire.Message) bool {
		if m.Type != wire.Extended {
			return false
		}
		if m.ExtendedID == 0 {
			if h, err := wire.ParseExtendedHandshake(m.Payload); err == nil {
				theirs = h.M[wire.ExtMetadataName]
			}
			return false
		}
		mm, _, err := metadata.ParseMetadataMsg(m.Payload)
		if m.ExtendedID != MetaID || err != nil || mm.Type != metadata.MetadataRequest || theirs == 0 {
			return false
		}
		if b := serve(mm.Piece); b != nil {
			werr = p.Send(&wire.Message{Type: wire.Extended, ExtendedID: uint8(theirs), Payload: b})
		}
		return werr != nil
	})
	return errors.Join(werr, err)
}

// SpamMetadataRequests asks n times for piece, never reading the answers:
// the other side must not hold them all. It learns the other side's
// ut_metadata ID from the messages it sends first, then stops reading.
func (p *Peer) SpamMetadataRequests(n, piece int, d time.Duration) error {
	if err := p.SendExtHandshake(MetadataHandshake(0)); err != nil {
		return err
	}
	id, err := p.TheirMetaID(d)
	if err != nil {
		return err
	}
	if id == 0 {
		return errors.New("no ut_metadata on the other side")
	}
	req, err := metadata.MetadataMsg{Type: metadata.MetadataRequest, Piece: piece}.Append(nil, nil)
	if err != nil {
		return err
	}
	one := (&wire.Message{Type: wire.Extended, ExtendedID: uint8(id), Payload: req}).Append(nil)
	const batch = 256
	var buf []byte
	for i := range n {
		buf = append(buf, one...)
		if len(buf) >= batch*len(one) || i == n-1 {
			if err := p.SendRaw(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}
