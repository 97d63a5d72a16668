package krpc

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/anacrolix/torrent/bencode"
)

// Limits on untrusted input.
const (
	// MaxDepth bounds bencode nesting. A valid KRPC message nests at most
	// three deep (message, arguments, want list); the slack is for
	// extensions we do not know.
	MaxDepth = 8
	// MaxTransactionIDLen bounds the echoed "t": long ones only serve to
	// inflate our answers.
	MaxTransactionIDLen = 16
	minMsgLen           = len("d1:t0:1:y1:re")
)

// Errors Parse returns, wrapped with detail; match with errors.Is.
var (
	ErrNotDict   = errors.New("krpc: not a bencoded dict")
	ErrTooDeep   = errors.New("krpc: nesting too deep")
	ErrMalformed = errors.New("krpc: malformed message")
)

// Parse decodes and validates one KRPC message from untrusted bytes. The
// checks run from cheapest to dearest: shape, nesting depth, a decode whose
// strings cannot be longer than the packet, then the fields each kind of
// message must carry. Any failure is an error; Parse never panics.
func Parse(b []byte) (Msg, error) {
	var m Msg
	if len(b) < minMsgLen || b[0] != 'd' || b[len(b)-1] != 'e' {
		return Msg{}, ErrNotDict
	}
	if err := checkDepth(b, MaxDepth); err != nil {
		return Msg{}, err
	}
	if err := decodeBounded(b, &m); err != nil {
		return Msg{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := m.validate(); err != nil {
		return Msg{}, err
	}
	return m, nil
}

func (m *Msg) validate() error {
	if m.T == "" || len(m.T) > MaxTransactionIDLen {
		return fmt.Errorf("%w: transaction id of %d bytes", ErrMalformed, len(m.T))
	}
	switch m.Y {
	case KindQuery:
		if m.Q == "" || m.A == nil || m.A.ID.IsZero() {
			return fmt.Errorf("%w: query without method or id", ErrMalformed)
		}
	case KindResponse:
		if m.R == nil || m.R.ID.IsZero() {
			return fmt.Errorf("%w: response without id", ErrMalformed)
		}
	case KindError:
		if m.E == nil {
			return fmt.Errorf("%w: error without body", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: message kind %q", ErrMalformed, m.Y)
	}
	return nil
}

// decodeBounded decodes all of b into v with no string longer than b
// itself, so a short packet cannot make the decoder allocate much.
func decodeBounded(b []byte, v any) (err error) {
	defer func() {
		// The decoder re-raises runtime errors from its internals; a public
		// node must turn even those into a dropped packet.
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder: %v", r)
		}
	}()
	d := bencode.NewDecoder(bytes.NewReader(b))
	d.MaxStrLen = int64(len(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.ReadEOF() != nil {
		return errors.New("trailing bytes")
	}
	return nil
}

// Append appends the bencoding of m to b. It does not allocate when b has
// room. The error is always nil; it is kept so that callers need not
// change if an encoding that can fail is ever added.
func (m *Msg) Append(b []byte) ([]byte, error) {
	return appendMsg(b, m), nil
}

// checkDepth walks the token structure of b, without decoding values, to
// refuse deep nesting before the recursive decoder sees it. Anything it
// cannot walk is left for the decoder to reject with a precise error.
func checkDepth(b []byte, max int) error {
	depth := 0
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == 'd' || c == 'l':
			depth++
			if depth > max {
				return ErrTooDeep
			}
			i++
		case c == 'e':
			depth--
			i++
		case c == 'i':
			j := bytes.IndexByte(b[i:], 'e')
			if j < 0 {
				return nil
			}
			i += j + 1
		case c >= '0' && c <= '9':
			n := 0
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				n = n*10 + int(b[i]-'0')
				if n > len(b) {
					return nil
				}
				i++
			}
			if i >= len(b) || b[i] != ':' {
				return nil
			}
			i += 1 + n
		default:
			return nil
		}
	}
	return nil
}
