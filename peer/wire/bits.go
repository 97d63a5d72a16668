package wire

// Bits is a BEP 3 bitfield: the high bit of byte 0 is piece 0. It does not
// know its piece count; out-of-range indexes are treated as absent rather
// than panicking because indexes often come straight from a peer.
type Bits []byte

// bitfieldLen is ceil(n/8), written so it cannot overflow for large n.
func bitfieldLen(n int) int {
	l := n / 8
	if n%8 != 0 {
		l++
	}
	return l
}

// NewBits returns a cleared bitfield for n pieces; n < 0 gives an empty one.
func NewBits(n int) Bits {
	if n < 0 {
		n = 0
	}
	return make(Bits, bitfieldLen(n))
}

// Has reports whether bit i is set; false when i is out of range.
func (b Bits) Has(i int) bool {
	if i < 0 || i/8 >= len(b) {
		return false
	}
	return b[i/8]&(0x80>>(i%8)) != 0
}

// Set sets bit i; out-of-range indexes are ignored.
func (b Bits) Set(i int) {
	if i < 0 || i/8 >= len(b) {
		return
	}
	b[i/8] |= 0x80 >> (i % 8)
}

// ValidBitfield reports whether b is exactly ceil(n/8) bytes with the spare
// bits clear. BEP 3 says peers with set spare bits should be dropped; a set
// spare bit also claims a piece that does not exist.
func ValidBitfield(b []byte, n int) bool {
	if n < 0 || len(b) != bitfieldLen(n) {
		return false
	}
	if spare := n % 8; spare != 0 {
		return b[len(b)-1]&(0xff>>spare) == 0
	}
	return true
}
