package wire

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
)

// AllowedFastSet returns the BEP 6 allowed fast set of k pieces for a peer
// at ip in a torrent of numPieces pieces, in the order the BEP's algorithm
// yields them: SHA-1 over the masked address and the info-hash, then over
// each previous digest, every 4-byte big-endian word taken modulo
// numPieces, duplicates skipped.
//
// The address is masked so that a peer gains nothing by taking more
// addresses in one network: to its /24 for IPv4, as BEP 6 gives it, and
// to its /48 for IPv6, which BEP 6 leaves open (a /48 is what one site
// is commonly given). An IPv4-mapped IPv6 address counts as IPv4.
//
// When k >= numPieces every piece is in the set, in index order: the
// algorithm would otherwise have to draw every index. numPieces <= 0, k <=
// 0 or an invalid address give nil.
func AllowedFastSet(ip netip.Addr, infoHash [20]byte, numPieces, k int) []uint32 {
	if numPieces <= 0 || k <= 0 || !ip.IsValid() {
		return nil
	}
	if k >= numPieces {
		out := make([]uint32, numPieces)
		for i := range out {
			out[i] = uint32(i)
		}
		return out
	}
	ip = ip.Unmap()
	var x []byte
	if ip.Is4() {
		a := ip.As4()
		a[3] = 0
		x = append(x, a[:]...)
	} else {
		a := ip.As16()
		clear(a[6:])
		x = append(x, a[:]...)
	}
	x = append(x, infoHash[:]...)
	out := make([]uint32, 0, k)
	seen := make(map[uint32]bool, k)
	for len(out) < k {
		sum := sha1.Sum(x)
		x = sum[:]
		for i := 0; i < 5 && len(out) < k; i++ {
			index := binary.BigEndian.Uint32(x[i*4:]) % uint32(numPieces)
			if !seen[index] {
				seen[index] = true
				out = append(out, index)
			}
		}
	}
	return out
}
