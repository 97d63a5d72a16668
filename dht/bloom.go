package dht

import (
	"crypto/sha1"
	"math"
	"math/bits"
	"net/netip"

	"node/krpc"
)

// BEP 33 fixes the filter's parameters so that filters from different
// nodes can be OR-ed together into one scrape.
const (
	bloomBits   = krpc.BloomLen * 8 // m
	bloomHashes = 2                 // k
)

// bloomInsert adds ip to f exactly as BEP 33's reference code does: both
// indexes come from the SHA-1 of the IP's 4 or 16 bytes. An IPv4-mapped
// address is hashed as IPv4, else the same host would count twice
// depending on which socket it announced through.
func bloomInsert(f *krpc.Bloom, ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	h := sha1.Sum(ip.Unmap().AsSlice())
	for i := 0; i < 2*bloomHashes; i += 2 {
		idx := (uint(h[i]) | uint(h[i+1])<<8) % bloomBits
		f[idx/8] |= 1 << (idx % 8)
	}
}

// BloomEstimate is BEP 33's estimate of how many distinct IPs went into f,
// which may be the union (bitwise OR) of filters from several nodes:
// ln(c/m) / (k ln(1 - 1/m)), c being the zero bits. A full filter would
// give ln(0); it is counted as having one zero bit, which is the largest
// size the filter can tell apart, so the result is always finite.
func BloomEstimate(f *krpc.Bloom) float64 {
	if f == nil {
		return 0
	}
	zeros := 0
	for _, b := range f {
		zeros += 8 - bits.OnesCount8(b)
	}
	c := float64(max(zeros, 1))
	return math.Log(c/bloomBits) / (bloomHashes * math.Log(1-1.0/bloomBits))
}
