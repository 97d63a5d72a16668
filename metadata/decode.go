package metadata

import (
	"errors"
	"fmt"
	"strconv"
)

// Bencoded input is read here by walking its tokens, not by the decoder of
// github.com/anacrolix/torrent/bencode. That decoder builds the value of
// every dictionary key that has no struct field as an interface before
// dropping it (an info dictionary holding a list of millions of empty
// dictionaries under an unknown key cost tens of times its size), takes a
// list of one value where a value is expected, building the whole list to
// find out, recurses without a depth limit, and costs a few hundred bytes to
// set up for every value. Here values are found by skipping over their
// tokens, without allocating, and only the integers and strings we read are
// converted. Encoding still goes through the library.
//
// krpc/parse.go walks bencode too (scanHead), with another job: it reads
// only the top-level t and y of a datagram and guesses, before the
// decoder runs, whether the decoder would take it, so it must be more
// lenient than the decoder where this walker is stricter (integers,
// leading zeros) and it has its own rules for odd heads. Neither imports
// the other, and a shared leaf package for some twenty lines that would
// need a mode for each job is not worth its weight. Both refuse a string
// whose length runs past the input (TestSkipValueRefusesOverlongStrings
// here, TestScanHeadRefusesOverlongStrings there) and bound nesting.

// errTooDeep is returned for bencode nested deeper than maxNesting.
var errTooDeep = errors.New("bencode nested too deeply")

// kindOf is the bencode kind of the value v starts with: 'd', 'l', 'i', or
// 's' for a string; 0 if it starts with none of these.
func kindOf(v []byte) byte {
	switch {
	case len(v) == 0:
		return 0
	case v[0] == 'd' || v[0] == 'l' || v[0] == 'i':
		return v[0]
	case v[0] >= '0' && v[0] <= '9':
		return 's'
	}
	return 0
}

// intValue is v, which must be exactly one bencoded integer. Like the
// library's decoder it refuses leading zeros and "-0".
func intValue(v []byte) (int64, error) {
	if kindOf(v) != 'i' || v[len(v)-1] != 'e' {
		return 0, errors.New("not a bencoded integer")
	}
	digits := v[1 : len(v)-1]
	if d := digits; len(d) > 1 {
		if d[0] == '-' {
			d = d[1:]
		}
		if d[0] < '1' || d[0] > '9' {
			return 0, errors.New("bencoded integer with a leading zero")
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bencoded integer: %w", err)
	}
	return n, nil
}

// stringValue is the content of v, which must be exactly one bencoded
// string. It aliases v.
func stringValue(v []byte) ([]byte, error) {
	if kindOf(v) != 's' {
		return nil, errors.New("not a bencoded string")
	}
	start, n, err := stringAt(v, 0)
	if err != nil {
		return nil, err
	}
	if start+n != len(v) {
		return nil, errors.New("not a bencoded string")
	}
	return v[start:], nil
}

// intPtr and stringPtr are intValue and stringValue for fields where a
// missing key differs from a zero value.
func intPtr(v []byte) (*int64, error) {
	n, err := intValue(v)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func stringPtr(v []byte) (*string, error) {
	s, err := stringOf(v)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// stringOf is stringValue as a string.
func stringOf(v []byte) (string, error) {
	b, err := stringValue(v)
	return string(b), err
}

// stringAt reads the length prefix of the bencoded string at b[i] and
// returns the index of its first byte and its length, checked to fit in b.
func stringAt(b []byte, i int) (start, n int, err error) {
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		n = n*10 + int(b[j]-'0')
		if n > len(b) {
			return 0, 0, errors.New("bencode string longer than input")
		}
		j++
	}
	if j == i || j >= len(b) || b[j] != ':' || b[i] == '0' && j > i+1 {
		return 0, 0, errors.New("malformed bencode string length")
	}
	j++
	if n > len(b)-j {
		return 0, 0, errors.New("bencode string longer than input")
	}
	return j, n, nil
}

// skipValue returns the index just past the value that starts at b[i]. It
// allocates nothing and refuses nesting deeper than maxNesting. Dictionary
// keys inside the value are not checked to be strings: nobody reads them.
func skipValue(b []byte, i int) (int, error) {
	depth := 0
	for {
		if i >= len(b) {
			return 0, errors.New("bencoded value truncated")
		}
		switch c := b[i]; {
		case c == 'd' || c == 'l':
			depth++
			if depth > maxNesting {
				return 0, errTooDeep
			}
			i++
			continue
		case c == 'e':
			if depth == 0 {
				return 0, errors.New("unexpected 'e'")
			}
			depth--
			i++
		case c == 'i':
			j := i + 1
			if j < len(b) && b[j] == '-' {
				j++
			}
			k := j
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j == k || j >= len(b) || b[j] != 'e' {
				return 0, errors.New("malformed bencode integer")
			}
			i = j + 1
		case c >= '0' && c <= '9':
			start, n, err := stringAt(b, i)
			if err != nil {
				return 0, err
			}
			i = start + n
		default:
			return 0, fmt.Errorf("unknown bencode value type %q", c)
		}
		if depth == 0 {
			return i, nil
		}
	}
}

// scanDict calls f with each key and value of the dictionary at the start
// of b, in order, and returns how many bytes the dictionary takes. The
// slices passed to f alias b.
func scanDict(b []byte, f func(key, val []byte) error) (int, error) {
	if kindOf(b) != 'd' {
		return 0, errors.New("not a bencoded dictionary")
	}
	for i := 1; ; {
		if i >= len(b) {
			return 0, errors.New("bencoded dictionary truncated")
		}
		if b[i] == 'e' {
			return i + 1, nil
		}
		if kindOf(b[i:]) != 's' {
			return 0, errors.New("bencoded dictionary key is not a string")
		}
		ks, kn, err := stringAt(b, i)
		if err != nil {
			return 0, err
		}
		end, err := skipValue(b, ks+kn)
		if err != nil {
			return 0, err
		}
		if err := f(b[ks:ks+kn], b[ks+kn:end]); err != nil {
			return 0, err
		}
		i = end
	}
}

// forEachEntry is scanDict for b that must be exactly one dictionary.
func forEachEntry(b []byte, f func(key, val []byte) error) error {
	n, err := scanDict(b, f)
	if err == nil && n != len(b) {
		err = fmt.Errorf("%d trailing bytes after bencoded value", len(b)-n)
	}
	return err
}

// forEachElem calls f with each element of b, which must be exactly one
// list; the slices alias b. f returns false to stop early.
func forEachElem(b []byte, f func(val []byte) (bool, error)) error {
	if kindOf(b) != 'l' {
		return errors.New("not a bencoded list")
	}
	for i := 1; ; {
		if i >= len(b) {
			return errors.New("bencoded list truncated")
		}
		if b[i] == 'e' {
			if i+1 != len(b) {
				return fmt.Errorf("%d trailing bytes after bencoded value", len(b)-i-1)
			}
			return nil
		}
		end, err := skipValue(b, i)
		if err != nil {
			return err
		}
		more, err := f(b[i:end])
		if err != nil || !more {
			return err
		}
		i = end
	}
}
