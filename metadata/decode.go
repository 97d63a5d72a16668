package metadata

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/anacrolix/torrent/bencode"
)

// errTooDeep is returned for bencode nested deeper than maxNesting.
var errTooDeep = errors.New("bencode nested too deeply")

// decodePrefix decodes the first bencoded value of b into v and returns how
// many bytes it used. The decoder is recursive and re-raises some runtime
// panics from its internals, so input is first checked for depth, strings
// may not claim more bytes than b holds, and any panic left becomes an error:
// all of b is untrusted.
func decodePrefix(b []byte, v any) (n int, err error) {
	if err := checkNesting(b, maxNesting); err != nil {
		return 0, err
	}
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("bencode: %v", r)
		}
	}()
	d := bencode.NewDecoder(bytes.NewReader(b))
	d.MaxStrLen = int64(len(b))
	if err := d.Decode(v); err != nil {
		return 0, err
	}
	return int(d.Offset), nil
}

// decodeAll is decodePrefix for input that must be exactly one value.
func decodeAll(b []byte, v any) error {
	n, err := decodePrefix(b, v)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%d trailing bytes after bencoded value", len(b)-n)
	}
	return nil
}

// checkNesting walks the token structure of the first value in b, without
// decoding anything, and refuses nesting deeper than max or string lengths
// that are negative or run past the end: the cases the decoder would turn
// into a stack overflow or a huge allocation. Other malformations are left
// for the decoder to report precisely.
func checkNesting(b []byte, max int) error {
	depth := 0
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == 'd' || c == 'l':
			depth++
			if depth > max {
				return errTooDeep
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
					return errors.New("bencode string longer than input")
				}
				i++
			}
			if i >= len(b) || b[i] != ':' {
				return nil
			}
			i++
			if n > len(b)-i {
				return errors.New("bencode string longer than input")
			}
			i += n
		case c == '-':
			return errors.New("bencode string with negative length")
		default:
			return nil
		}
		if depth <= 0 {
			// The first value is complete; what follows (BEP 9 piece data)
			// is not bencode.
			return nil
		}
	}
	return nil
}
