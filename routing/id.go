package routing

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"

	"github.com/anacrolix/torrent/bencode"
)

// IDLen is the length in bytes of node IDs and info-hashes (BEP 5: 160 bits).
const IDLen = 20

// ID is a 160-bit point in the DHT key space: a node ID or an info-hash.
// It is a comparable value type, usable as a map key.
type ID [IDLen]byte

// ParseID decodes 40 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDLen {
		return id, fmt.Errorf("id %q: want %d hex digits, got %d", s, 2*IDLen, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("id %q: %w", s, err)
	}
	return id, nil
}

// IDFromBytes copies b into an ID; b must be exactly IDLen bytes.
func IDFromBytes(b []byte) (ID, error) {
	var id ID
	if len(b) != IDLen {
		return id, fmt.Errorf("id: want %d bytes, got %d", IDLen, len(b))
	}
	copy(id[:], b)
	return id, nil
}

// RandomID returns an ID drawn from r.
func RandomID(r *rand.Rand) ID {
	var id ID
	for i := 0; i < IDLen; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < IDLen; j++ {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	return id
}

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zeros, which the wire uses for "absent".
func (id ID) IsZero() bool { return id == ID{} }

// Distance is the Kademlia XOR metric.
func (id ID) Distance(other ID) ID {
	var d ID
	for i := range d {
		d[i] = id[i] ^ other[i]
	}
	return d
}

// Less orders IDs as 160-bit big-endian integers; on distances it means "closer".
func (id ID) Less(other ID) bool {
	for i := range id {
		if id[i] != other[i] {
			return id[i] < other[i]
		}
	}
	return false
}

// Cmp compares a and b as big-endian integers: -1, 0 or +1.
func (id ID) Cmp(other ID) int {
	for i := range id {
		if id[i] != other[i] {
			if id[i] < other[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// CommonPrefixLen is the number of leading bits a and b share (160 if equal).
func CommonPrefixLen(a, b ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return IDLen * 8
}

// Closer reports whether a is strictly closer to target than b.
func Closer(target, a, b ID) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

var errIDLen = errors.New("id: not a 20-byte string")

// MarshalBencode encodes the ID as a 20-byte bencode string.
func (id ID) MarshalBencode() ([]byte, error) { return bencode.Marshal(id[:]) }

// UnmarshalBencode accepts exactly a 20-byte string: a wrong length is an
// error, never silently padded or truncated.
func (id *ID) UnmarshalBencode(b []byte) error {
	// The decoder's string limit is the input's own length, so a forged
	// length prefix cannot make it allocate more than b.
	d := bencode.NewDecoder(bytes.NewReader(b))
	d.MaxStrLen = int64(len(b))
	var s []byte
	if err := d.Decode(&s); err != nil {
		return err
	}
	if d.ReadEOF() != nil || len(s) != IDLen {
		return errIDLen
	}
	copy(id[:], s)
	return nil
}
