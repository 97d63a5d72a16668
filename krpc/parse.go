package krpc

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"

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
// checks run from cheapest to dearest: shape, one walk over the tokens
// (nesting depth, one dict and nothing after it), a decode whose strings
// cannot be longer than the packet, then the fields each kind of message
// must carry. Any failure is an error; Parse never panics.
func Parse(b []byte) (Msg, error) {
	h := scanHead(b)
	return parseScanned(b, &h)
}

// parseScanned is Parse for a datagram whose head has been scanned: the
// Transport scans each datagram once, before its rate limit, and decodes
// it at most once after.
func parseScanned(b []byte, h *head) (Msg, error) {
	var m Msg
	if len(b) < minMsgLen || b[0] != 'd' || b[len(b)-1] != 'e' {
		return Msg{}, ErrNotDict
	}
	if h.tooDeep {
		return Msg{}, ErrTooDeep
	}
	if !h.ok {
		// The decoder would refuse this too, or it has a key that is not
		// a string, which Parse refuses (see head); it is spared the work.
		return Msg{}, fmt.Errorf("%w: not one bencoded dict", ErrMalformed)
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

// decodes counts runs of the reflection decoder, the dear part of reading
// a datagram, so that tests can check that none is decoded twice.
var decodes atomic.Uint64

// decodeBounded decodes all of b into v with no string longer than b
// itself, so a short packet cannot make the decoder allocate much.
func decodeBounded(b []byte, v any) (err error) {
	decodes.Add(1)
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
// room. Every Msg encodes: the writer has no failure to report.
func (m *Msg) Append(b []byte) []byte {
	return appendMsg(b, m)
}

// head is what one walk over a datagram's tokens learns without decoding
// it: whether it is a single bencoded dict nested at most MaxDepth deep
// with nothing after it (ok; tooDeep says why not, when that is why), and
// its top-level "t" and "y" strings, which alias the datagram. The walk
// does not look inside integers, nor at what nested dicts hold, so in that
// it accepts more than the decoder. In one thing it is stricter: a
// top-level key must be a string (badKey), where the decoder also takes a
// one-element list; Parse refuses those. So a datagram the walk refuses
// either would not decode or is refused by Parse anyway, and the Transport
// can judge a datagram by its head before paying for a decode.
//
// The decoder's reading of t and y is the one that counts, and it is
// lenient: the last of duplicate keys wins, and a one-element list or an
// integer may stand for a string. A datagram whose t or y appears twice or
// is not a plain string is odd: its t and y are left empty, as no cheap
// reading of them is sure to be the decoder's, and so it can be neither a
// reply exempt from the rate limit nor a query for the fast path.
// Otherwise t and y are exactly what the decoder reads (FuzzParse checks
// it).
type head struct {
	t, y                []byte
	ok, tooDeep, badKey bool
	odd                 bool
}

// isReply reports whether the head is that of a response or an error.
func (h *head) isReply() bool {
	return h.ok && !h.odd && len(h.y) == 1 && (h.y[0] == 'r' || h.y[0] == 'e')
}

// scanHead walks b once. It does not allocate.
//
// metadata/decode.go has a walker of its own (skipValue, scanDict), on
// purpose: there the walk is the decoder, strict about every token of a
// whole torrent, where this one only predicts the decoder's verdict on a
// datagram of at most a few KiB before paying for it, so it must refuse
// nothing the decoder would take (it reads no integer, takes leading
// zeros) and it reads t and y by its own rules on odd heads. One walker
// for both would need a mode for each, and a tiny package that krpc and
// metadata both import for some twenty lines of scanning. What both must
// agree on, they do: a string whose length runs past the input is refused
// (TestScanHeadRefusesOverlongStrings here, TestSkipValueRefusesOverlongStrings
// there), and nesting is bounded.
func scanHead(b []byte) (h head) {
	if len(b) < 2 || b[0] != 'd' {
		return h
	}
	var seenT, seenY bool
	for i := 1; i < len(b); {
		if b[i] == 'e' {
			h.ok = i == len(b)-1
			if h.odd {
				h.t, h.y = nil, nil
			}
			return h
		}
		k, j, ok := scanString(b, i)
		if !ok || j >= len(b) {
			h.badKey = i < len(b) && (b[i] == 'l' || b[i] == 'd' || b[i] == 'i')
			return h
		}
		if len(k) == 1 && (k[0] == 't' || k[0] == 'y') {
			seen := &seenT
			if k[0] == 'y' {
				seen = &seenY
			}
			h.odd = h.odd || *seen
			*seen = true
			if b[j] >= '0' && b[j] <= '9' {
				v, next, ok := scanString(b, j)
				if !ok {
					return h
				}
				if k[0] == 't' {
					h.t = v
				} else {
					h.y = v
				}
				i = next
				continue
			}
			h.odd = true
		}
		next, tooDeep, ok := skipValue(b, j, 1)
		if !ok {
			h.tooDeep = tooDeep
			return h
		}
		i = next
	}
	return h
}

// scanString reads the string at b[i]: decimal length, ':', the bytes. It
// returns the bytes and the index after them.
func scanString(b []byte, i int) (s []byte, next int, ok bool) {
	n, j := 0, i
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		n = n*10 + int(b[j]-'0')
		if n > len(b) {
			return nil, 0, false
		}
	}
	if j == i || j >= len(b) || b[j] != ':' || n > len(b)-j-1 {
		return nil, 0, false
	}
	j++
	return b[j : j+n], j + n, true
}

// skipValue returns the index just past the value at b[i], a value held by
// a container at nesting depth depth. tooDeep reports a container nested
// deeper than MaxDepth.
func skipValue(b []byte, i, depth int) (next int, tooDeep, ok bool) {
	open := 0
	for i < len(b) {
		switch c := b[i]; {
		case c == 'd' || c == 'l':
			open++
			if depth+open > MaxDepth {
				return 0, true, false
			}
			i++
		case c == 'e':
			if open == 0 {
				return 0, false, false // an end where a value should be
			}
			open--
			i++
		case c == 'i':
			j := bytes.IndexByte(b[i+1:], 'e')
			if j < 0 {
				return 0, false, false
			}
			i += j + 2
		case c >= '0' && c <= '9':
			_, j, ok := scanString(b, i)
			if !ok {
				return 0, false, false
			}
			i = j
		default:
			return 0, false, false
		}
		if open == 0 {
			return i, false, true
		}
	}
	return 0, false, false
}
