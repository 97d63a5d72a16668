package wire

import (
	"errors"
	"strconv"
)

// Sentinel errors. Callers branch on these with errors.Is; the concrete
// errors carry the context.
var (
	// ErrUnknownMessage is kept distinct from malformed-message errors
	// because BEP 3 tells implementations to ignore message ids they do not
	// understand rather than drop the peer.
	ErrUnknownMessage = errors.New("unknown message id")
	// ErrMessageLength means the payload length is impossible for its id.
	ErrMessageLength = errors.New("bad payload length for message")
	// ErrBlockLength means a request/cancel length or a piece block is empty
	// where it must not be, or larger than MaxRequestLen.
	ErrBlockLength = errors.New("block length out of range")
	// ErrHandshake means a BEP 3 handshake could not be parsed.
	ErrHandshake = errors.New("bad handshake")
	// ErrExtendedHandshake means a BEP 10 handshake dictionary was rejected,
	// either while parsing or because Append was given unencodable values.
	ErrExtendedHandshake = errors.New("bad extended handshake")
)

// MessageError reports a message payload that ParseMessage rejected.
type MessageError struct {
	// ID is the raw message id byte, which may not be a known MessageType.
	ID uint8
	// Len is the payload length including the id byte.
	Len int
	// Err is one of the sentinel errors, possibly wrapped with detail.
	Err error
}

func (e *MessageError) Error() string {
	return "wire: " + MessageType(e.ID).String() + " message with " +
		strconv.Itoa(e.Len) + "-byte payload: " + e.Err.Error()
}

func (e *MessageError) Unwrap() error { return e.Err }
