package krpc

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Seed corpora also live in testdata/fuzz/<Target>/, one file per message
// kind; the f.Add seeds below cover the BEP examples and edge cases.

func FuzzParse(f *testing.F) {
	for _, g := range goldens {
		f.Add([]byte(g.want))
	}
	for _, s := range []string{
		"",
		"de",
		"d1:t0:1:y1:re",
		"d1:rd2:id20:" + id20 + "5:nodes0:6:nodes60:6:valuesle" + rtail, // empty lists
		"d1:ad2:id20:" + id20 + "4:wantlee1:q9:find_node1:t2:aa1:y1:qe",
		"d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:z" + strings.Repeat("l", MaxDepth-1) + strings.Repeat("e", MaxDepth-1) + "e",
		"d1:t999999999:aa1:y1:qe",
		// BEP 32 family lies: nodes6 a byte short of a record, a 38-byte
		// record in nodes, IPv6 and mapped peers side by side.
		"d1:rd2:id20:" + id20 + "6:nodes637:" + node6Compact[:37] + "e1:t2:aa1:y1:re",
		"d1:rd2:id20:" + id20 + "5:nodes38:" + node6Compact + "e1:t2:aa1:y1:re",
		"d1:rd2:id20:" + id20 + "6:valuesl18:" + node6Compact[20:] + "18:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x01\x1a\xe1ee1:t2:aa1:y1:re",
		"d1:eli201ee1:t2:aa1:y1:ee",
		"d1:rd2:id20:" + id20 + "5:nodes9:def456...e1:t2:aa1:y1:re",
		// An 18-byte IPv4-mapped peer and ip: decoded as IPv4.
		"d2:ip18:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x01\x1a\xe11:rd2:id20:" + id20 +
			"6:valuesl18:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04\x1a\xe1ee1:t2:aa1:y1:re",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkHead(t, in)
		m1, err := Parse(in)
		if err != nil {
			if !reflect.DeepEqual(m1, Msg{}) {
				t.Fatalf("Parse(%q) returned %+v with error %v", in, m1, err)
			}
			return
		}
		b1 := m1.Append(nil)
		m2, err := Parse(b1)
		if err != nil {
			t.Fatalf("re-encoding of %q does not parse: %q: %v", in, b1, err)
		}
		if !msgEqual(m1, m2) {
			t.Fatalf("round trip changed the message\n  in %q\n  m1 %s\n  b1 %q\n  m2 %s", in, describe(m1), b1, describe(m2))
		}
		b2 := m2.Append(nil)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not idempotent\n  in %q\n  b1 %q\n  b2 %q", in, b1, b2)
		}
	})
}

// FuzzCompactNodes feeds the same bytes to every compact decoder: each
// must not panic, and what decodes must re-encode to bytes that decode to
// the same value.
func FuzzCompactNodes(f *testing.F) {
	for _, s := range []string{
		"0:",
		"26:" + node4Compact,
		"52:" + node4Compact + node4Compact,
		"38:" + node6Compact,
		"25:" + node4Compact[:25],
		"6:axje.u",
		"18:" + node6Compact[20:],
		"le",
		"l6:axje.u6:idhtnme",
		"l18:" + node6Compact[20:] + "6:axje.ue",
		"l5:axje.e",
		"li1ee",
		"18:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04\x1a\xe1",
		"999999999:x",
		"i1e",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if claimsHugeString(in) {
			// The compact decoders rely on their caller to bound string
			// lengths: called directly on "99999999:x" they allocate the
			// ~100 MB it claims, as their inner bencode.Unmarshal allows up
			// to 128 MiB. Under Parse the outer decoder has already read
			// the whole value (TestParseHugeLengthDoesNotAllocate).
			return
		}
		var n4 Nodes
		if n4.UnmarshalBencode(in) == nil {
			roundTrip(t, "Nodes", n4, func(b []byte) (any, error) { var v Nodes; err := v.UnmarshalBencode(b); return v, err })
			for _, n := range n4 {
				if !n.Addr.Addr().Is4() {
					t.Fatalf("Nodes(%q) holds non-IPv4 %v", in, n.Addr)
				}
			}
		}
		var n6 Nodes6
		if n6.UnmarshalBencode(in) == nil {
			roundTrip(t, "Nodes6", n6, func(b []byte) (any, error) { var v Nodes6; err := v.UnmarshalBencode(b); return v, err })
		}
		var ps Peers
		if ps.UnmarshalBencode(in) == nil {
			roundTrip(t, "Peers", ps, func(b []byte) (any, error) { var v Peers; err := v.UnmarshalBencode(b); return v, err })
		}
		var a Addr
		if a.UnmarshalBencode(in) == nil {
			roundTrip(t, "Addr", a, func(b []byte) (any, error) { var v Addr; err := v.UnmarshalBencode(b); return v, err })
		}
		if ap, err := ParseAddrPort(in); err == nil {
			if got := AppendAddrPort(nil, ap); len(got) != len(in) && !(len(in) == Peer6Len && ap.Addr().Is4()) {
				t.Fatalf("ParseAddrPort(%q) = %v re-encodes as %q", in, ap, got)
			}
		}
	})
}

// claimsHugeString reports whether in declares a string far longer than
// itself.
func claimsHugeString(in []byte) bool {
	n := 0
	for _, c := range in {
		if c >= '0' && c <= '9' {
			n = n*10 + int(c-'0')
			if n > 1<<20 {
				return true
			}
			continue
		}
		n = 0
	}
	return false
}

type marshaler interface{ MarshalBencode() ([]byte, error) }

func roundTrip(t *testing.T, name string, v marshaler, decode func([]byte) (any, error)) {
	t.Helper()
	b1, err := v.MarshalBencode()
	if err != nil {
		t.Fatalf("%s %v: MarshalBencode: %v", name, v, err)
	}
	v2, err := decode(b1)
	if err != nil {
		t.Fatalf("%s %v: encoded %q does not decode: %v", name, v, b1, err)
	}
	if rv, rv2 := reflect.ValueOf(v), reflect.ValueOf(v2); rv.Kind() == reflect.Slice && rv.Len() == 0 && rv2.Len() == 0 {
		return // nil and empty are the same on the wire
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("%s round trip: %v -> %q -> %v", name, v, b1, v2)
	}
}

func FuzzError(f *testing.F) {
	for _, s := range []string{
		"li201e23:A Generic Error Ocurrede",
		"li202e12:Server Errore",
		"li203e14:Protocol Errore",
		"li204e14:Method Unknowne",
		"li201ee",
		"li-1e0:e",
		"li201ei2ee",
		"li201e1:a1:be",
		"li99999999999999999999e1:xe",
		"le",
		"l3:abce",
		"i201e",
		"d1:ai1ee",
		"li201el1:xee",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Error
		if e.UnmarshalBencode(in) != nil {
			return
		}
		b, err := e.MarshalBencode()
		if err != nil {
			t.Fatalf("MarshalBencode(%+v): %v", e, err)
		}
		var e2 Error
		if err := e2.UnmarshalBencode(b); err != nil {
			t.Fatalf("%+v encodes as %q, which does not decode: %v", e, b, err)
		}
		if e != e2 {
			t.Fatalf("round trip: %+v -> %q -> %+v", e, b, e2)
		}
	})
}

// describe prints m with its pointer fields followed.
func describe(m Msg) string {
	s := fmt.Sprintf("%+v", m)
	if m.A != nil {
		s += fmt.Sprintf(" a=%+v", *m.A)
	}
	if m.R != nil {
		s += fmt.Sprintf(" r=%+v", *m.R)
	}
	if m.E != nil {
		s += fmt.Sprintf(" e=%+v", *m.E)
	}
	if m.IP != nil {
		s += fmt.Sprintf(" ip=%v", m.IP.AddrPort())
	}
	return s
}

// checkHead checks that the walk before the decoder refuses nothing the
// decoder accepts (Parse trusts it to) but a key that is not a string, and
// that a head it does not call odd has the decoder's t and y: the rate
// limit exempts a datagram by its head, so a head that reads "a reply to
// us" where the decoder reads a query would let queries in unpaid.
func checkHead(t *testing.T, in []byte) {
	t.Helper()
	h := scanHead(in)
	if h.odd && (h.isReply() || h.ok && (h.t != nil || h.y != nil)) {
		t.Fatalf("scanHead(%q) is odd but keeps t %q, y %q", in, h.t, h.y)
	}
	var m Msg
	if len(in) < minMsgLen || in[0] != 'd' || decodeBounded(in, &m) != nil {
		return
	}
	if !h.ok && !h.tooDeep && !h.badKey {
		t.Fatalf("scanHead refuses %q, which decodes", in)
	}
	if h.ok && !h.odd && (string(h.t) != m.T || string(h.y) != m.Y) {
		t.Fatalf("scanHead(%q): t %q, y %q; the decoder: t %q, y %q", in, h.t, h.y, m.T, m.Y)
	}
}
