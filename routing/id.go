package routing

import (
	"math/bits"
	"math/rand/v2"

	"node/krpc/nodeid"
)

// The ID and the contact are the wire's (package nodeid). They are aliases
// here so that code working with the table can keep saying routing.ID and
// routing.Contact; the types are the same.

// IDLen is the length in bytes of node IDs and info-hashes (BEP 5: 160 bits).
const IDLen = nodeid.Len

// ID is a 160-bit point in the DHT key space: a node ID or an info-hash.
type ID = nodeid.ID

// Contact is what other nodes learn about a node: its ID and where to reach it.
type Contact = nodeid.Contact

// ParseID decodes 40 hex digits.
func ParseID(s string) (ID, error) { return nodeid.Parse(s) }

// IDFromBytes copies b into an ID; b must be exactly IDLen bytes.
func IDFromBytes(b []byte) (ID, error) { return nodeid.FromBytes(b) }

// RandomID returns an ID drawn from r.
func RandomID(r *rand.Rand) ID { return nodeid.Random(r) }

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
