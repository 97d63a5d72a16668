package wire

import (
	"bytes"
	"testing"
)

// Seeds live in testdata/fuzz/<Target>/ so that crashers found by earlier
// runs stay regression tests under plain `go test`.

func FuzzParseMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		enc := m.Append(nil)
		if len(enc) != 4+len(b) {
			t.Fatalf("re-encoded %d bytes from %d-byte payload", len(enc), len(b))
		}
		if !bytes.Equal(enc[4:], b) {
			// Every accepted payload has exactly one encoding.
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, enc[4:])
		}
		m2, err := ParseMessage(enc[4:])
		if err != nil {
			t.Fatalf("re-parse of %x: %v", enc, err)
		}
		if !messagesEqual(m, m2) {
			t.Fatalf("round trip: %+v != %+v", m, m2)
		}
	})
}

func FuzzParseExtendedHandshake(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseExtendedHandshake(b)
		if err != nil {
			return
		}
		enc, err := h.Append(nil)
		if err != nil {
			t.Fatalf("Append of parsed %+v: %v", h, err)
		}
		h2, err := ParseExtendedHandshake(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if !extHandshakesEqual(h, h2) {
			t.Fatalf("round trip: %+v != %+v", h, h2)
		}
	})
}

func FuzzParseHandshake(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHandshake(b)
		if err != nil {
			return
		}
		if enc := h.Append(nil); !bytes.Equal(enc, b) {
			t.Fatalf("round trip:\n in %x\nout %x", b, enc)
		}
	})
}

func FuzzParsePex(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePex(b)
		if err != nil {
			return
		}
		if len(p.Added) > MaxPexPeers || len(p.Dropped) > MaxPexPeers {
			t.Fatalf("%d added, %d dropped", len(p.Added), len(p.Dropped))
		}
		enc, err := p.Append(nil)
		if err != nil {
			t.Fatalf("Append of parsed %+v: %v", p, err)
		}
		p2, err := ParsePex(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if !pexEqual(p, p2) {
			t.Fatalf("round trip: %+v != %+v", p, p2)
		}
	})
}
