package krpc

import (
	"errors"
	"fmt"

	"github.com/anacrolix/torrent/bencode"
)

// Error codes from BEP 5.
const (
	ErrorCodeGeneric       = 201
	ErrorCodeServer        = 202
	ErrorCodeProtocol      = 203 // malformed packet, invalid arguments or bad token
	ErrorCodeMethodUnknown = 204
)

// Error is a KRPC error message body, the list [code, message]. It is also
// the error a query returns when the remote node answers with one.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("krpc error %d: %s", e.Code, e.Msg) }

// MarshalBencode encodes the BEP 5 list form.
func (e Error) MarshalBencode() ([]byte, error) {
	return bencode.Marshal([]any{e.Code, e.Msg})
}

// UnmarshalBencode accepts [code, message] and tolerates a missing message,
// since some implementations send only the code.
func (e *Error) UnmarshalBencode(b []byte) error {
	// Decoded through any: the library cannot decode a list into []any.
	var v any
	if err := decodeBounded(b, &v); err != nil {
		return err
	}
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return errors.New("error: not a non-empty list")
	}
	code, ok := l[0].(int64)
	if !ok {
		return errors.New("error: code is not an integer")
	}
	e.Code = int(code)
	e.Msg = ""
	if len(l) > 1 {
		if s, ok := l[1].(string); ok {
			e.Msg = s
		}
	}
	return nil
}
