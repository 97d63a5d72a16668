package wire

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes the house golden format: hex bytes separated by spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad golden hex %q: %v", s, err)
	}
	return b
}

// spacedHex renders b in the golden format so failures are readable.
func spacedHex(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(hex.EncodeToString([]byte{c}))
	}
	return sb.String()
}

// messagesEqual compares the fields that matter, treating nil and empty
// slices as equal because aliasing an empty tail of the input may give
// either.
func messagesEqual(a, b Message) bool {
	return a.KeepAlive == b.KeepAlive &&
		a.Type == b.Type &&
		a.Index == b.Index && a.Begin == b.Begin && a.Length == b.Length &&
		bytes.Equal(a.Bitfield, b.Bitfield) &&
		bytes.Equal(a.Block, b.Block) &&
		a.Port == b.Port &&
		a.ExtendedID == b.ExtendedID &&
		bytes.Equal(a.Payload, b.Payload)
}

func extHandshakesEqual(a, b ExtendedHandshake) bool {
	if len(a.M) != len(b.M) {
		return false
	}
	for k, v := range a.M {
		if w, ok := b.M[k]; !ok || w != v {
			return false
		}
	}
	return a.V == b.V && a.P == b.P && a.Reqq == b.Reqq &&
		a.MetadataSize == b.MetadataSize && a.YourIP == b.YourIP &&
		a.IPv4 == b.IPv4 && a.IPv6 == b.IPv6
}
