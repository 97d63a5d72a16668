package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
)

// BEP 9's example extension handshake, {'m': {'ut_metadata': 3},
// 'metadata_size': 31235}, as it is bencoded on the wire (BEP 9 uses the
// BEP 10 handshake to advertise ut_metadata).
const bep9Example = "d1:md11:ut_metadatai3ee13:metadata_sizei31235ee"

func TestParseExtendedHandshakeBEP9Example(t *testing.T) {
	h, err := ParseExtendedHandshake([]byte(bep9Example))
	if err != nil {
		t.Fatal(err)
	}
	if h.M[ExtMetadataName] != 3 || len(h.M) != 1 || h.MetadataSize != 31235 {
		t.Fatalf("got %+v", h)
	}
	out, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != bep9Example {
		t.Fatalf("re-encoded as %q, want %q", out, bep9Example)
	}
}

func TestParseExtendedHandshakeBEP10Example(t *testing.T) {
	// BEP 10's example handshake, {'m': {'LT_metadata': 1, 'ut_pex': 2},
	// 'p': 6881, 'v': "µTorrent 1.2"}, with the yourip, reqq and an unknown
	// key (which BEP 10 says to ignore) added.
	in := "d1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e4:reqqi250e1:v13:µTorrent 1.2" +
		"6:yourip4:\xc0\x00\x02\x017:unknownli1ei2eee"
	h, err := ParseExtendedHandshake([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := ExtendedHandshake{
		M:    map[string]int{"LT_metadata": 1, "ut_pex": 2},
		V:    "µTorrent 1.2",
		P:    6881,
		Reqq: 250,
		// 192.0.2.1 (TEST-NET-1)
		YourIP: "\xc0\x00\x02\x01",
	}
	if !extHandshakesEqual(h, want) {
		t.Fatalf("got %+v, want %+v", h, want)
	}
	addr, ok := h.YourAddr()
	if !ok || addr != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("YourAddr() = %v, %v", addr, ok)
	}
}

func TestExtendedHandshakeGolden(t *testing.T) {
	tests := []struct {
		name string
		h    ExtendedHandshake
		want string
	}{
		{"empty", ExtendedHandshake{}, "d1:mdee"},
		{"ours", ExtendedHandshake{
			M: map[string]int{ExtMetadataName: 1, "ut_pex": 0},
			V: "node/1", P: 6881, Reqq: 500, MetadataSize: 1234,
			YourIP: "\x7f\x00\x00\x01",
		}, "d1:md11:ut_metadatai1e6:ut_pexi0ee13:metadata_sizei1234e1:pi6881e4:reqqi500e1:v6:node/16:yourip4:\x7f\x00\x00\x01e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.h.Append([]byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "x"+tt.want {
				t.Fatalf("got %q, want %q", got, "x"+tt.want)
			}
			// Disabled (0) ids are written, for re-handshakes, but dropped
			// on parse.
			parsed, err := ParseExtendedHandshake(got[1:])
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := parsed.M["ut_pex"]; ok {
				t.Fatal("disabled extension kept")
			}
			if parsed.M == nil {
				t.Fatal("parsed M is nil")
			}
		})
	}
}

func TestExtendedHandshakeAppendRejects(t *testing.T) {
	many := make(map[string]int)
	for i := range 65 {
		many[fmt.Sprint("x", i)] = 1
	}
	for name, h := range map[string]ExtendedHandshake{
		"id 256":           {M: map[string]int{"a": 256}},
		"id -1":            {M: map[string]int{"a": -1}},
		"65 extensions":    {M: many},
		"port 65536":       {P: 65536},
		"negative reqq":    {Reqq: -1},
		"negative md size": {MetadataSize: -1},
	} {
		b, err := h.Append([]byte("keep"))
		if !errors.Is(err, ErrExtendedHandshake) || string(b) != "keep" {
			t.Errorf("%s: got %q, %v", name, b, err)
		}
	}
}

func TestParseExtendedHandshakeBad(t *testing.T) {
	var hundredKeys strings.Builder
	hundredKeys.WriteString("d1:md")
	for i := range 100 {
		fmt.Fprintf(&hundredKeys, "3:x%02di1e", i)
	}
	hundredKeys.WriteString("ee")

	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"not a dict: int", "i1e"},
		{"not a dict: list", "ld1:md11:ut_metadatai3eeee"},
		{"not a dict: string", "3:abc"},
		{"truncated", "d1:md11:ut_metadatai3e"},
		{"trailing bytes", bep9Example + "x"},
		{"trailing value", bep9Example + "de"},
		{"m as list", "d1:mli1eee"},
		{"m as singleton list of dict", "d1:mld1:ai1eeee"},
		{"m as int", "d1:mi1ee"},
		{"m as string", "d1:m2:abe"},
		{"m value 300", "d1:md1:ai300eee"},
		{"m value 256", "d1:md1:ai256eee"},
		{"m value -1", "d1:md1:ai-1eee"},
		{"m value string", "d1:md1:a1:bee"},
		{"m value overflows int64", "d1:md1:ai99999999999999999999eee"},
		{"100 m keys", hundredKeys.String()},
		{"negative metadata_size", "d1:md11:ut_metadatai3ee13:metadata_sizei-1ee"},
		{"negative p", "d1:pi-1ee"},
		{"p over 65535", "d1:pi65536ee"},
		{"negative reqq", "d4:reqqi-5ee"},
		{"v as int", "d1:vi1ee"},
		{"p as string", "d1:p4:6881e"},
		{"bad int", "d1:pi01ee"},
		{"bad token", "d1:pxe"},
		{"huge string length", "d1:v999999999999:x"},
		{"huge unknown string length", "d1:x999999999999:x"},
		{"huge string in m", "d1:md999999999999:xi1eee"},
		{"string length overflows", "d1:v99999999999999999999999:x"},
		{"too long", "d1:v17400:" + strings.Repeat("x", 17400) + "e"},
		{"deep nesting over the cap", "d1:x" + strings.Repeat("l", 20000) + strings.Repeat("e", 20000) + "e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseExtendedHandshake([]byte(tt.in))
			if !errors.Is(err, ErrExtendedHandshake) {
				t.Fatalf("got %+v, %v; want ErrExtendedHandshake", h, err)
			}
		})
	}
}

func TestParseExtendedHandshakeLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ExtendedHandshake
	}{
		{"no m", "d1:pi1ee", ExtendedHandshake{P: 1}},
		{"m with zeros dropped", "d1:md1:ai0e1:bi255eee", ExtendedHandshake{M: map[string]int{"b": 255}}},
		{"yourip 5 bytes ignored", "d6:yourip5:abcdee", ExtendedHandshake{}},
		{"yourip 16 bytes", "d6:yourip16:0123456789abcdefe", ExtendedHandshake{YourIP: "0123456789abcdef"}},
		{"64 m keys", func() string {
			var b strings.Builder
			b.WriteString("d1:md")
			for i := range 64 {
				fmt.Fprintf(&b, "3:x%02di1e", i)
			}
			return b.String() + "ee"
		}(), ExtendedHandshake{M: func() map[string]int {
			m := make(map[string]int)
			for i := range 64 {
				m[fmt.Sprintf("x%02d", i)] = 1
			}
			return m
		}()}},
		// As deep as the length cap allows: parsed and ignored, no crash.
		{"deep unknown value", "d1:x" + strings.Repeat("l", 8700) + strings.Repeat("e", 8700) + "e", ExtendedHandshake{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseExtendedHandshake([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !extHandshakesEqual(h, tt.want) {
				t.Fatalf("got %+v, want %+v", h, tt.want)
			}
		})
	}
}

func TestYourAddr(t *testing.T) {
	for _, tt := range []struct {
		ip   string
		want string
	}{
		{"", ""},
		{"\x01\x02\x03", ""},
		{"\x01\x02\x03\x04", "1.2.3.4"},
		{string(netip.MustParseAddr("::ffff:1.2.3.4").AsSlice()), "1.2.3.4"},
		{string(netip.MustParseAddr("2001:db8::1").AsSlice()), "2001:db8::1"},
	} {
		a, ok := ExtendedHandshake{YourIP: tt.ip}.YourAddr()
		if ok != (tt.want != "") || (ok && a.String() != tt.want) {
			t.Errorf("YourAddr(%q) = %v, %v; want %q", tt.ip, a, ok, tt.want)
		}
	}
}

// A length prefix claiming gigabytes must be refused before anything of
// that size is allocated.
func TestParseExtendedHandshakeHugeLengthNoAlloc(t *testing.T) {
	for _, in := range []string{
		"d1:v999999999:x",
		"d1:x999999999:x",
		"d1:md999999999:xi1eee",
		"d1:md1:a999999999:xee",
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 10 {
			if _, err := ParseExtendedHandshake([]byte(in)); err == nil {
				t.Fatalf("%q parsed", in)
			}
		}
		runtime.ReadMemStats(&after)
		// Loose: ten parses of a tiny input should stay far below one
		// 1 GB string.
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("%q: allocated %d bytes over 10 parses", in, got)
		}
	}
}

// BEP 7: the sender's own addresses ride in the handshake as 4 and 16 raw
// bytes; they round-trip, and a field of another length, or an
// IPv4-mapped address posing as IPv6, is ignored and counted, not fatal.
func TestExtendedHandshakeBEP7Addresses(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.7")
	v6 := netip.MustParseAddr("2001:db8::7")
	h := ExtendedHandshake{P: 6881, IPv4: string(v4.AsSlice()), IPv6: string(v6.AsSlice())}
	b, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseExtendedHandshake(b)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := got.Addr4(); !ok || a != v4 {
		t.Fatalf("Addr4() = %v, %v", a, ok)
	}
	if a, ok := got.Addr6(); !ok || a != v6 {
		t.Fatalf("Addr6() = %v, %v", a, ok)
	}
	if got.Dropped != 0 {
		t.Fatalf("Dropped = %d for valid fields", got.Dropped)
	}

	for _, tc := range []struct {
		name, in string
		dropped  int
	}{
		{"short ipv4", "d1:mde4:ipv43:\x7f\x00\x00e", 1},
		{"ipv4 of 16", "d1:mde4:ipv416:0123456789abcdefe", 1},
		{"ipv6 of 4", "d1:mde4:ipv64:\x7f\x00\x00\x01e", 1},
		{"long ipv6", "d1:mde4:ipv617:0123456789abcdefge", 1},
		{"all three bad", "d1:mde4:ipv41:x4:ipv61:y6:yourip1:ze", 3},
		{"empty strings", "d1:mde4:ipv40:4:ipv60:e", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseExtendedHandshake([]byte(tc.in))
			if err != nil {
				t.Fatalf("a bad address field failed the handshake: %v", err)
			}
			if h.IPv4 != "" || h.IPv6 != "" || h.YourIP != "" || h.Dropped != tc.dropped {
				t.Fatalf("got %+v, want the fields dropped and %d counted", h, tc.dropped)
			}
			if _, ok := h.Addr4(); ok {
				t.Fatal("Addr4 of a dropped field")
			}
			if _, ok := h.Addr6(); ok {
				t.Fatal("Addr6 of a dropped field")
			}
		})
	}

	mapped := netip.AddrFrom16(v4.As16())
	h, err = ParseExtendedHandshake([]byte("d1:mde4:ipv616:" + string(mapped.AsSlice()) + "e"))
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := h.Addr6(); ok {
		t.Fatalf("Addr6() = %v for an IPv4-mapped address", a)
	}

	for _, bad := range []ExtendedHandshake{{IPv4: "abc"}, {IPv6: "0123456789abcde"}} {
		if _, err := bad.Append(nil); err == nil {
			t.Fatalf("Append(%+v) encoded a wrong-length address", bad)
		}
	}
}
