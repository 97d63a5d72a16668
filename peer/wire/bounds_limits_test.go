package wire

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// An "m" dictionary of maxExtensions entries is read and written; one more
// is refused both ways.
func TestMaxExtensionsBound(t *testing.T) {
	for _, n := range []int{maxExtensions, maxExtensions + 1} {
		var b strings.Builder
		b.WriteString("d1:md")
		m := make(map[string]int, n)
		for i := range n {
			fmt.Fprintf(&b, "3:x%02di1e", i)
			m[fmt.Sprintf("x%02d", i)] = 1
		}
		b.WriteString("ee")
		h, err := ParseExtendedHandshake([]byte(b.String()))
		_, aerr := (&ExtendedHandshake{M: m}).Append(nil)
		if n <= maxExtensions {
			if err != nil || len(h.M) != n || aerr != nil {
				t.Errorf("%d extensions: parse %v (%d kept), append %v", n, err, len(h.M), aerr)
			}
		} else if !errors.Is(err, ErrExtendedHandshake) || !errors.Is(aerr, ErrExtendedHandshake) {
			t.Errorf("%d extensions: parse %v, append %v; bound is %d", n, err, aerr, maxExtensions)
		}
	}
}

// An extended handshake of maxExtendedPayload bytes is read; one byte more
// is refused before decoding.
func TestMaxExtendedPayloadBound(t *testing.T) {
	hs := func(n int) []byte {
		// "d1:v<len>:<x...>e", padded so the whole is n bytes.
		for d := 1; ; d++ {
			l := n - len("d1:v") - d - len(":") - len("e")
			if s := fmt.Sprint(l); len(s) == d {
				return []byte("d1:v" + s + ":" + strings.Repeat("x", l) + "e")
			}
		}
	}
	exact, over := hs(maxExtendedPayload), hs(maxExtendedPayload+1)
	if len(exact) != maxExtendedPayload || len(over) != maxExtendedPayload+1 {
		t.Fatalf("padding: %d, %d", len(exact), len(over))
	}
	if _, err := ParseExtendedHandshake(exact); err != nil {
		t.Errorf("%d bytes: %v", len(exact), err)
	}
	if _, err := ParseExtendedHandshake(over); !errors.Is(err, ErrExtendedHandshake) {
		t.Errorf("%d bytes: %v, bound is %d", len(over), err, maxExtendedPayload)
	}
}
