package nodeid

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"
)

// Len is the length in bytes of node IDs and info-hashes (BEP 5: 160 bits).
const Len = 20

// ID is a 160-bit point in the DHT key space: a node ID or an info-hash.
// It is a comparable value type, usable as a map key.
type ID [Len]byte

// Contact is what other nodes learn about a node: its ID and where to reach
// it. The compact node encoding carries exactly this.
type Contact struct {
	ID   ID
	Addr netip.AddrPort
}

// Parse decodes 40 hex digits.
func Parse(s string) (ID, error) {
	var id ID
	if len(s) != 2*Len {
		return id, fmt.Errorf("id %q: want %d hex digits, got %d", s, 2*Len, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("id %q: %w", s, err)
	}
	return id, nil
}

// FromBytes copies b into an ID; b must be exactly Len bytes.
func FromBytes(b []byte) (ID, error) {
	var id ID
	if len(b) != Len {
		return id, fmt.Errorf("id: want %d bytes, got %d", Len, len(b))
	}
	copy(id[:], b)
	return id, nil
}

// Random returns an ID drawn from r.
func Random(r *rand.Rand) ID {
	var id ID
	for i := 0; i < Len; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < Len; j++ {
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
func (id ID) Less(other ID) bool { return id.Cmp(other) < 0 }

// Cmp compares id and other as big-endian integers: -1, 0 or +1.
func (id ID) Cmp(other ID) int { return bytes.Compare(id[:], other[:]) }

var errLen = errors.New("id: not a 20-byte string")

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
	if d.ReadEOF() != nil || len(s) != Len {
		return errLen
	}
	copy(id[:], s)
	return nil
}
