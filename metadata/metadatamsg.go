package metadata

import (
	"errors"
	"fmt"

	"github.com/anacrolix/torrent/bencode"
)

// BEP 9 ut_metadata message types.
const (
	MetadataRequest = 0
	MetadataData    = 1
	MetadataReject  = 2
)

// MetadataMsg is the bencoded dictionary of a BEP 9 ut_metadata message. A
// data message's piece bytes follow the dictionary in the same payload.
type MetadataMsg struct {
	Type      int `bencode:"msg_type"`
	Piece     int `bencode:"piece"`
	TotalSize int `bencode:"total_size,omitempty"`
}

// ErrMetadataMsg is wrapped by ParseMetadataMsg's and Append's errors.
var ErrMetadataMsg = errors.New("invalid ut_metadata message")

// rawMetadataMsg tells missing keys from zeros.
type rawMetadataMsg struct {
	Type      *int
	Piece     *int
	TotalSize *int
}

// intField is intPtr for an int field.
func intField(v []byte) (*int, error) {
	n, err := intValue(v)
	if err != nil {
		return nil, err
	}
	if int64(int(n)) != n {
		return nil, fmt.Errorf("%d overflows int", n)
	}
	i := int(n)
	return &i, nil
}

// readMetadataMsg reads the dictionary at the start of b, skipping keys
// other than ours without decoding them, and returns its length.
func readMetadataMsg(b []byte) (*rawMetadataMsg, int, error) {
	var r rawMetadataMsg
	n, err := scanDict(b, func(k, v []byte) error {
		var err error
		switch string(k) {
		case "msg_type":
			r.Type, err = intField(v)
		case "piece":
			r.Piece, err = intField(v)
		case "total_size":
			r.TotalSize, err = intField(v)
		}
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return &r, n, nil
}

// ParseMetadataMsg parses an extended-message payload (the bytes after the
// BEP 10 extended message ID): a bencoded dictionary and, for a data
// message, the piece bytes after it. The returned data aliases b.
func ParseMetadataMsg(b []byte) (MetadataMsg, []byte, error) {
	if len(b) == 0 || b[0] != 'd' {
		return MetadataMsg{}, nil, fmt.Errorf("%w: not a bencoded dictionary", ErrMetadataMsg)
	}
	r, n, err := readMetadataMsg(b)
	if err != nil {
		return MetadataMsg{}, nil, fmt.Errorf("%w: %w", ErrMetadataMsg, err)
	}
	if r.Type == nil || r.Piece == nil {
		return MetadataMsg{}, nil, fmt.Errorf("%w: missing msg_type or piece", ErrMetadataMsg)
	}
	m := MetadataMsg{Type: *r.Type, Piece: *r.Piece}
	if r.TotalSize != nil {
		m.TotalSize = *r.TotalSize
	}
	data := b[n:]
	if len(data) == 0 {
		data = nil
	}
	if err := m.check(data); err != nil {
		return MetadataMsg{}, nil, err
	}
	return m, data, nil
}

// check validates a message and its data, for parsing and for writing
// alike, so that whatever one accepts the other does too.
func (m MetadataMsg) check(data []byte) error {
	switch m.Type {
	case MetadataRequest, MetadataReject:
		if len(data) > 0 {
			return fmt.Errorf("%w: %d bytes of data on msg_type %d", ErrMetadataMsg, len(data), m.Type)
		}
	case MetadataData:
		if len(data) == 0 {
			return fmt.Errorf("%w: data message without data", ErrMetadataMsg)
		}
		if len(data) > MetadataPieceSize {
			return fmt.Errorf("%w: %d bytes of data, more than %d", ErrMetadataMsg, len(data), MetadataPieceSize)
		}
		if m.TotalSize < 1 || m.TotalSize > MaxMetadataSize {
			return fmt.Errorf("%w: total_size %d not in 1..%d", ErrMetadataMsg, m.TotalSize, MaxMetadataSize)
		}
	default:
		return fmt.Errorf("%w: unknown msg_type %d", ErrMetadataMsg, m.Type)
	}
	if m.Piece < 0 {
		return fmt.Errorf("%w: negative piece %d", ErrMetadataMsg, m.Piece)
	}
	if m.TotalSize < 0 {
		return fmt.Errorf("%w: negative total_size %d", ErrMetadataMsg, m.TotalSize)
	}
	return nil
}

// Append appends the payload of m, followed by data for a data message, to
// b.
func (m MetadataMsg) Append(b []byte, data []byte) ([]byte, error) {
	if err := m.check(data); err != nil {
		return b, err
	}
	return m.appendUnchecked(b, data)
}

func (m MetadataMsg) appendUnchecked(b []byte, data []byte) ([]byte, error) {
	enc, err := bencode.Marshal(m)
	if err != nil {
		return b, fmt.Errorf("ut_metadata: %w", err)
	}
	b = append(b, enc...)
	return append(b, data...), nil
}

// ServeMetadata answers a BEP 9 request for piece of our info dictionary
// raw: a data message, or a reject if the piece is out of range or raw is
// nil (we have no metadata yet).
func ServeMetadata(raw []byte, piece int) (payload []byte) {
	if len(raw) == 0 || piece < 0 || piece >= (len(raw)+MetadataPieceSize-1)/MetadataPieceSize {
		// Unchecked: a negative piece is echoed back as asked.
		b, _ := MetadataMsg{Type: MetadataReject, Piece: piece}.appendUnchecked(nil, nil)
		return b
	}
	start := piece * MetadataPieceSize
	end := min(start+MetadataPieceSize, len(raw))
	b, _ := MetadataMsg{Type: MetadataData, Piece: piece, TotalSize: len(raw)}.
		appendUnchecked(make([]byte, 0, 64+end-start), raw[start:end])
	return b
}
