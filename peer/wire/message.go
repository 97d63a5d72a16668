package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

const (
	// BlockSize is the block size we request; 16 KiB is what essentially
	// every client uses and the largest many will serve.
	BlockSize = 16 << 10
	// MaxRequestLen bounds request/cancel lengths and piece blocks in both
	// directions. Accepting more would let a peer make us read and hold
	// arbitrarily large blocks.
	MaxRequestLen = BlockSize
)

// MessageType is the id byte that starts every non-keep-alive message.
type MessageType uint8

// Message ids from BEP 3, BEP 5 (Port), BEP 6 (the Fast extension:
// SuggestPiece through AllowedFast) and BEP 10 (Extended).
const (
	Choke         MessageType = 0
	Unchoke       MessageType = 1
	Interested    MessageType = 2
	NotInterested MessageType = 3
	Have          MessageType = 4
	Bitfield      MessageType = 5
	Request       MessageType = 6
	Piece         MessageType = 7
	Cancel        MessageType = 8
	Port          MessageType = 9
	SuggestPiece  MessageType = 0x0D
	HaveAll       MessageType = 0x0E
	HaveNone      MessageType = 0x0F
	RejectRequest MessageType = 0x10
	AllowedFast   MessageType = 0x11
	Extended      MessageType = 20
)

var messageTypeNames = [...]string{
	Choke:         "choke",
	Unchoke:       "unchoke",
	Interested:    "interested",
	NotInterested: "not interested",
	Have:          "have",
	Bitfield:      "bitfield",
	Request:       "request",
	Piece:         "piece",
	Cancel:        "cancel",
	Port:          "port",
	SuggestPiece:  "suggest piece",
	HaveAll:       "have all",
	HaveNone:      "have none",
	RejectRequest: "reject request",
	AllowedFast:   "allowed fast",
	Extended:      "extended",
}

func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) && messageTypeNames[t] != "" {
		return messageTypeNames[t]
	}
	return "unknown(" + strconv.Itoa(int(t)) + ")"
}

// Message is one peer-wire message. KeepAlive is the zero-length message;
// when it is set every other field is ignored.
//
// Only the fields that belong to Type are meaningful:
//   - Have, SuggestPiece, AllowedFast: Index.
//   - Request, Cancel, RejectRequest: Index, Begin, Length.
//   - Piece: Index, Begin, Block.
//   - Bitfield: Bitfield.
//   - Port: Port.
//   - Extended: ExtendedID, Payload.
type Message struct {
	KeepAlive bool
	Type      MessageType

	Index, Begin, Length uint32

	// Bitfield aliases the buffer given to ParseMessage.
	Bitfield []byte
	// Block aliases the buffer given to ParseMessage, so parsing a piece
	// costs no copy; a caller that keeps it past the buffer's reuse must
	// copy it.
	Block []byte

	// Port is the sender's DHT port (BEP 5).
	Port uint16

	// ExtendedID is the BEP 10 extended message id; 0 is the extended
	// handshake, other values are those the receiver assigned in its "m"
	// dictionary.
	ExtendedID uint8
	// Payload is the extended message body after ExtendedID. It aliases the
	// buffer given to ParseMessage.
	Payload []byte
}

// Append appends m with its 4-byte length prefix to b.
//
// It does not validate: it encodes exactly the fields that belong to
// m.Type, and an unknown Type is written as a bare id byte. Sending a
// malformed message is a bug in the caller, and the peer's parser (or ours,
// in tests) is what catches it.
func (m *Message) Append(b []byte) []byte {
	if m.KeepAlive {
		return append(b, 0, 0, 0, 0)
	}
	switch m.Type {
	case Have, SuggestPiece, AllowedFast:
		b = binary.BigEndian.AppendUint32(b, 5)
		b = append(b, byte(m.Type))
		return binary.BigEndian.AppendUint32(b, m.Index)
	case Bitfield:
		b = binary.BigEndian.AppendUint32(b, uint32(1+len(m.Bitfield)))
		b = append(b, byte(m.Type))
		return append(b, m.Bitfield...)
	case Request, Cancel, RejectRequest:
		b = binary.BigEndian.AppendUint32(b, 13)
		b = append(b, byte(m.Type))
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = binary.BigEndian.AppendUint32(b, m.Begin)
		return binary.BigEndian.AppendUint32(b, m.Length)
	case Piece:
		b = binary.BigEndian.AppendUint32(b, uint32(9+len(m.Block)))
		b = append(b, byte(m.Type))
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = binary.BigEndian.AppendUint32(b, m.Begin)
		return append(b, m.Block...)
	case Port:
		b = binary.BigEndian.AppendUint32(b, 3)
		b = append(b, byte(m.Type))
		return binary.BigEndian.AppendUint16(b, m.Port)
	case Extended:
		b = binary.BigEndian.AppendUint32(b, uint32(2+len(m.Payload)))
		b = append(b, byte(m.Type), m.ExtendedID)
		return append(b, m.Payload...)
	default:
		// Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone
		// and unknown ids.
		b = binary.BigEndian.AppendUint32(b, 1)
		return append(b, byte(m.Type))
	}
}

// ParseMessage parses one message payload, without the 4-byte length
// prefix; an empty payload is a keep-alive. Byte slices in the result alias
// b.
//
// Lengths are checked exactly per type, because a message whose length
// disagrees with its id means the stream is desynchronised or the peer is
// hostile, and either way nothing after it can be trusted. Unknown ids
// return an error wrapping ErrUnknownMessage, which callers should ignore
// as BEP 3 asks.
//
// The BEP 6 messages parse whether or not the Fast extension was agreed
// in the handshakes: whether a peer may send them is the connection's
// business, not the codec's.
func ParseMessage(b []byte) (Message, error) {
	if len(b) == 0 {
		return Message{KeepAlive: true}, nil
	}
	m := Message{Type: MessageType(b[0])}
	body := b[1:]
	fail := func(err error) (Message, error) {
		return Message{}, &MessageError{ID: b[0], Len: len(b), Err: err}
	}
	wantLen := func(n int) bool { return len(body) == n }
	switch m.Type {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		if !wantLen(0) {
			return fail(ErrMessageLength)
		}
	case Have, SuggestPiece, AllowedFast:
		if !wantLen(4) {
			return fail(ErrMessageLength)
		}
		m.Index = binary.BigEndian.Uint32(body)
	case Bitfield:
		m.Bitfield = body
	case Request, Cancel, RejectRequest:
		if !wantLen(12) {
			return fail(ErrMessageLength)
		}
		m.Index = binary.BigEndian.Uint32(body)
		m.Begin = binary.BigEndian.Uint32(body[4:])
		m.Length = binary.BigEndian.Uint32(body[8:])
		if m.Length == 0 || m.Length > MaxRequestLen {
			return fail(fmt.Errorf("%w: length %d, want 1..%d", ErrBlockLength, m.Length, MaxRequestLen))
		}
	case Piece:
		if len(body) < 8 {
			return fail(ErrMessageLength)
		}
		m.Index = binary.BigEndian.Uint32(body)
		m.Begin = binary.BigEndian.Uint32(body[4:])
		m.Block = body[8:]
		if len(m.Block) > MaxRequestLen {
			return fail(fmt.Errorf("%w: block %d bytes, max %d", ErrBlockLength, len(m.Block), MaxRequestLen))
		}
	case Port:
		if !wantLen(2) {
			return fail(ErrMessageLength)
		}
		m.Port = binary.BigEndian.Uint16(body)
	case Extended:
		if len(body) < 1 {
			return fail(ErrMessageLength)
		}
		m.ExtendedID = body[0]
		m.Payload = body[1:]
	default:
		return fail(ErrUnknownMessage)
	}
	return m, nil
}

const (
	// unknownPiecesBitfieldLen caps bitfields before the info dictionary is
	// known (magnet links): 64 KiB covers 512 Ki pieces, beyond any sane
	// torrent, while keeping a hostile peer from making us buffer much.
	unknownPiecesBitfieldLen = 64 << 10
	// maxExtendedPayload is the largest extended message body we accept: a
	// BEP 9 metadata piece of 16 KiB plus its bencoded header dictionary,
	// for which 1 KiB is generous. The extended handshake shares the cap.
	maxExtendedPayload = BlockSize + 1<<10
)

// MaxMessageLen returns the largest payload length (the value of the length
// prefix) a connection should accept for a torrent with numPieces pieces.
// It is the largest of a full bitfield, a piece message carrying a
// MaxRequestLen block, and an extended message carrying a metadata piece.
//
// numPieces <= 0 means the piece count is not known yet (a magnet link
// before metadata arrives); bitfields up to 64 KiB (524288 pieces) are then
// allowed, and the caller must check the bitfield's exact length with
// ValidBitfield once the count is known.
func MaxMessageLen(numPieces int) int {
	bf := unknownPiecesBitfieldLen
	if numPieces > 0 {
		bf = bitfieldLen(numPieces)
	}
	return max(1+bf, 1+8+MaxRequestLen, 2+maxExtendedPayload)
}
