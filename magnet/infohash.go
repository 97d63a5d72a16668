package magnet

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
)

const (
	btihPrefix = "urn:btih:"
	btmhPrefix = "urn:btmh:"

	// sha256Multihash is the multihash header for a 32-byte SHA-256 digest:
	// function code 0x12, then length 0x20. BEP 52 allows no other.
	sha256Multihash = "1220"
)

// ParseInfoHash decodes a v1 info-hash written as 40 hex digits or as 32
// base32 characters (RFC 4648 alphabet), either case.
func ParseInfoHash(s string) ([20]byte, error) {
	h, err := decodeBTIH(s)
	if err != nil {
		return h, fmt.Errorf("magnet: info-hash %w", err)
	}
	return h, nil
}

// decodeBTIH returns an error without a prefix so that each caller can say
// where the value came from.
func decodeBTIH(s string) ([20]byte, error) {
	var h [20]byte
	switch len(s) {
	case 40:
		if !isHex(s) {
			return h, fmt.Errorf("%s is not valid hex", quote(s))
		}
		hex.Decode(h[:], []byte(s))
	case 32:
		// The base32 decoder wants upper case; fold only ASCII so that no
		// Unicode case mapping can change the length or smuggle a letter in.
		up := make([]byte, len(s))
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			up[i] = c
		}
		n, err := base32.StdEncoding.Decode(h[:], up)
		if err != nil || n != len(h) {
			return [20]byte{}, fmt.Errorf("%s is not valid base32 (RFC 4648)", quote(s))
		}
	default:
		return h, fmt.Errorf("%s is %d characters; want 40 hex digits or 32 base32 characters", quote(s), len(s))
	}
	return h, nil
}

// decodeBTMH decodes the value after "urn:btmh:".
func decodeBTMH(s string) ([32]byte, error) {
	var h [32]byte
	const want = len(sha256Multihash) + 2*len(h)
	if len(s) >= len(sha256Multihash) && s[:len(sha256Multihash)] != sha256Multihash {
		return h, fmt.Errorf("%s has multihash prefix %s; only %q (SHA-256, 32 bytes) is supported",
			quote(s), quote(s[:len(sha256Multihash)]), sha256Multihash)
	}
	if len(s) != want {
		return h, fmt.Errorf("%s is %d characters; want %d (%q followed by 64 hex digits)",
			quote(s), len(s), want, sha256Multihash)
	}
	digest := s[len(sha256Multihash):]
	if !isHex(digest) {
		return h, fmt.Errorf("%s is not valid hex after the %q prefix", quote(s), sha256Multihash)
	}
	hex.Decode(h[:], []byte(digest))
	return h, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
