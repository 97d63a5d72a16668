package krpc

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

const (
	id20  = "abcdefghij0123456789"
	id19  = "abcdefghij012345678"
	id21  = "abcdefghij0123456789X"
	zero  = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	bigT  = "0123456789abcdefX" // MaxTransactionIDLen+1 bytes
	tail  = "e1:q4:ping1:t2:aa1:y1:qe"
	rtail = "e1:t2:aa1:y1:re"
)

// checkParseErr asserts that Parse rejected in and, when want is set, that
// the error matches it. Whatever the cause, the error must belong to one
// of the documented classes.
func checkParseErr(t *testing.T, in string, want error) {
	t.Helper()
	m, err := Parse([]byte(in))
	if err == nil {
		t.Fatalf("Parse(%q) = %+v, want error", in, m)
	}
	if !reflect.DeepEqual(m, Msg{}) {
		t.Errorf("Parse(%q) returned a non-zero Msg with its error: %+v", in, m)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("Parse(%q) = %v, want errors.Is %v", in, err, want)
	}
	if !errors.Is(err, ErrNotDict) && !errors.Is(err, ErrTooDeep) && !errors.Is(err, ErrMalformed) {
		t.Errorf("Parse(%q) = %v, not one of ErrNotDict, ErrTooDeep, ErrMalformed", in, err)
	}
}

func TestParseRejects(t *testing.T) {
	deep := "d1:ad2:id20:" + id20 + tail[:len(tail)-1] + "1:z" +
		strings.Repeat("l", 100) + strings.Repeat("e", 100) + "e"
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		// Shape.
		{"empty", "", ErrNotDict},
		{"one byte", "d", ErrNotDict},
		{"empty dict", "de", ErrNotDict},
		{"list", "l4:spam4:eggse", ErrNotDict},
		{"long list", "l1:t2:aa1:y1:q1:q4:pinge", ErrNotDict},
		{"int", "i1234567890123e", ErrNotDict},
		{"string", "20:abcdefghij0123456789", ErrNotDict},
		{"text", "hello, world", ErrNotDict},
		{"trailing garbage", "d1:rd2:id20:" + id20 + rtail + "xx", ErrNotDict},
		{"trailing value", "d1:rd2:id20:" + id20 + rtail + "i1e", ErrMalformed},
		{"two messages", "d1:rd2:id20:" + id20 + rtail + "d1:rd2:id20:" + id20 + rtail, ErrMalformed},
		{"unterminated", "d1:rd2:id20:" + id20 + "e1:t2:aa1:y1:r1:ve", ErrMalformed},
		{"non-string key", "di1e2:aa1:t2:aa1:y1:re", ErrMalformed},
		{"bad type byte", "d1:t2:aa1:y1:rxe", ErrMalformed},
		{"leading zero length", "d1:t02:aa1:y1:re", ErrMalformed},
		{"leading zero int", "d1:ad2:id20:" + id20 + "e1:q4:ping2:roi01e1:t2:aa1:y1:qe", ErrMalformed},
		{"negative zero", "d1:ad2:id20:" + id20 + "e1:q4:ping2:roi-0e1:t2:aa1:y1:qe", ErrMalformed},
		{"empty int", "d1:ad2:id20:" + id20 + "e1:q4:ping2:roie1:t2:aa1:y1:qe", ErrMalformed},

		// Nesting: 100 lists inside the value of an unknown key of a valid ping.
		{"100 nested lists", deep, ErrTooDeep},
		{"100 nested dicts", "d1:t2:aa1:y1:q1:z" + strings.Repeat("d1:k", 100) + "i1e" + strings.Repeat("e", 100) + "e", ErrTooDeep},
		{"depth MaxDepth+1", "d1:t2:aa1:y1:q1:z" + strings.Repeat("l", MaxDepth) + strings.Repeat("e", MaxDepth) + "e", ErrTooDeep},

		// Wrong types.
		{"t as int", "d1:ti42e1:y1:re", ErrMalformed},
		{"t as list", "d1:tl2:aa2:bbe1:y1:re", ErrMalformed},
		{"y as int", "d1:t2:aa1:yi1ee", ErrMalformed},
		{"a as list", "d1:ale1:q4:ping1:t2:aa1:y1:qe", ErrMalformed},
		{"a as string", "d1:a3:abc1:q4:ping1:t2:aa1:y1:qe", ErrMalformed},
		{"r as int", "d1:ri1e1:t2:aa1:y1:re", ErrMalformed},
		{"id as int", "d1:ad2:idi5e" + tail, ErrMalformed},
		{"id as list", "d1:ad2:idl20:" + id20 + "e" + tail, ErrMalformed},
		{"ro as string", "d1:ad2:id20:" + id20 + "e1:q4:ping2:ro1:11:t2:aa1:y1:qe", ErrMalformed},
		{"port as string", "d1:ad2:id20:" + id20 + "4:port4:6881e1:q13:announce_peer1:t2:aa1:y1:qe", ErrMalformed},
		{"port overflows int", "d1:ad2:id20:" + id20 + "4:porti99999999999999999999ee1:q13:announce_peer1:t2:aa1:y1:qe", ErrMalformed},
		{"want of ints", "d1:ad2:id20:" + id20 + "4:wantli4eee1:q9:find_node1:t2:aa1:y1:qe", ErrMalformed},
		{"e as string", "d1:e3:abc1:t2:aa1:y1:ee", ErrMalformed},
		{"e as int", "d1:ei201e1:t2:aa1:y1:ee", ErrMalformed},
		{"e empty list", "d1:ele1:t2:aa1:y1:ee", ErrMalformed},
		{"e code as string", "d1:el3:2013:abce1:t2:aa1:y1:ee", ErrMalformed},
		{"ip as int", "d2:ipi1e1:rd2:id20:" + id20 + rtail, ErrMalformed},

		// Exact lengths.
		{"query id 19 bytes", "d1:ad2:id19:" + id19 + tail, ErrMalformed},
		{"query id 21 bytes", "d1:ad2:id21:" + id21 + tail, ErrMalformed},
		{"query id empty", "d1:ad2:id0:" + tail, ErrMalformed},
		{"response id 19 bytes", "d1:rd2:id19:" + id19 + rtail, ErrMalformed},
		{"response id 21 bytes", "d1:rd2:id21:" + id21 + rtail, ErrMalformed},
		{"query id zero", "d1:ad2:id20:" + zero + tail, ErrMalformed},
		{"response id zero", "d1:rd2:id20:" + zero + rtail, ErrMalformed},
		{"target 19 bytes", "d1:ad2:id20:" + id20 + "6:target19:" + id19 + "e1:q9:find_node1:t2:aa1:y1:qe", ErrMalformed},
		{"target 21 bytes", "d1:ad2:id20:" + id20 + "6:target21:" + id21 + "e1:q9:find_node1:t2:aa1:y1:qe", ErrMalformed},
		{"info_hash 19 bytes", "d1:ad2:id20:" + id20 + "9:info_hash19:" + id19 + "e1:q9:get_peers1:t2:aa1:y1:qe", ErrMalformed},
		{"info_hash 21 bytes", "d1:ad2:id20:" + id20 + "9:info_hash21:" + id21 + "e1:q9:get_peers1:t2:aa1:y1:qe", ErrMalformed},
		{"nodes 25 bytes", "d1:rd2:id20:" + id20 + "5:nodes25:" + node4Compact[:25] + rtail, ErrMalformed},
		{"nodes 27 bytes", "d1:rd2:id20:" + id20 + "5:nodes27:" + node4Compact + "x" + rtail, ErrMalformed},
		{"nodes 38 bytes", "d1:rd2:id20:" + id20 + "5:nodes38:" + node6Compact + rtail, ErrMalformed},
		// BEP 5's own placeholder "def456..." is 9 bytes: not a node list.
		{"bep5 placeholder nodes", "d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re", ErrMalformed},
		{"nodes as list", "d1:rd2:id20:" + id20 + "5:nodesl26:" + node4Compact + "e" + rtail, ErrMalformed},
		{"nodes6 37 bytes", "d1:rd2:id20:" + id20 + "6:nodes637:" + node6Compact[:37] + rtail, ErrMalformed},
		{"nodes6 39 bytes", "d1:rd2:id20:" + id20 + "6:nodes639:" + node6Compact + "x" + rtail, ErrMalformed},
		{"nodes6 26 bytes", "d1:rd2:id20:" + id20 + "6:nodes626:" + node4Compact + rtail, ErrMalformed},
		{"values entry 5 bytes", "d1:rd2:id20:" + id20 + "5:token1:x6:valuesl5:axje.ee" + rtail, ErrMalformed},
		{"values entry 7 bytes", "d1:rd2:id20:" + id20 + "5:token1:x6:valuesl6:axje.u7:idhtnm!ee" + rtail, ErrMalformed},
		{"values entry 17 bytes", "d1:rd2:id20:" + id20 + "6:valuesl17:0123456789abcdefge" + rtail, ErrMalformed},
		{"values entry int", "d1:rd2:id20:" + id20 + "6:valuesli1ee" + rtail, ErrMalformed},
		{"values as string", "d1:rd2:id20:" + id20 + "6:values6:axje.u" + rtail, ErrMalformed},
		{"ip 5 bytes", "d2:ip5:\x7f\x00\x00\x01\x001:rd2:id20:" + id20 + rtail, ErrMalformed},
		{"ip 4 bytes", "d2:ip4:\x7f\x00\x00\x011:rd2:id20:" + id20 + rtail, ErrMalformed},

		// Oversized length prefixes: rejected before any allocation of that size.
		{"huge t", "d1:t999999999:aa1:y1:qe", ErrMalformed},
		{"huge t beyond int64", "d1:t99999999999999999999:aa1:y1:qe", ErrMalformed},
		{"huge id", "d1:ad2:id999999999:" + id20 + tail, ErrMalformed},
		{"huge unknown value", "d1:t2:aa1:y1:q1:z999999999:xe", ErrMalformed},
		{"huge nodes", "d1:rd2:id20:" + id20 + "5:nodes999999999:" + node4Compact + rtail, ErrMalformed},
		{"huge values entry", "d1:rd2:id20:" + id20 + "6:valuesl999999999:axje.uee" + rtail, ErrMalformed},

		// Required fields.
		{"unknown y", "d1:t2:aa1:y1:xe", ErrMalformed},
		{"empty y", "d1:rd2:id20:" + id20 + "e1:t2:aa1:y0:e", ErrMalformed},
		{"missing y", "d1:rd2:id20:" + id20 + "e1:t2:aae", ErrMalformed},
		{"y as word", "d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y5:querye", ErrMalformed},
		{"query without q", "d1:ad2:id20:" + id20 + "e1:t2:aa1:y1:qe", ErrMalformed},
		{"query with empty q", "d1:ad2:id20:" + id20 + "e1:q0:1:t2:aa1:y1:qe", ErrMalformed},
		{"query without a", "d1:q4:ping1:t2:aa1:y1:qe", ErrMalformed},
		{"query with empty a", "d1:ade1:q4:ping1:t2:aa1:y1:qe", ErrMalformed},
		{"query with r instead of a", "d1:q4:ping1:rd2:id20:" + id20 + "e1:t2:aa1:y1:qe", ErrMalformed},
		{"response without r", "d1:t2:aa1:y1:re", ErrMalformed},
		{"response with a instead of r", "d1:ad2:id20:" + id20 + "e1:t2:aa1:y1:re", ErrMalformed},
		{"response with empty r", "d1:rde1:t2:aa1:y1:re", ErrMalformed},
		{"error without e", "d1:t2:aa1:y1:ee", ErrMalformed},
		{"missing t", "d1:ad2:id20:" + id20 + "e1:q4:ping1:y1:qe", ErrMalformed},
		{"empty t", "d1:ad2:id20:" + id20 + "e1:q4:ping1:t0:1:y1:qe", ErrMalformed},
		{"t too long", "d1:ad2:id20:" + id20 + "e1:q4:ping1:t17:" + bigT + "1:y1:qe", ErrMalformed},
		{"error t too long", "d1:eli201e1:xe1:t17:" + bigT + "1:y1:ee", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) { checkParseErr(t, tc.in, tc.want) })
	}
}

// A transaction ID of exactly MaxTransactionIDLen bytes is still accepted.
func TestParseMaxTransactionID(t *testing.T) {
	in := "d1:ad2:id20:" + id20 + "e1:q4:ping1:t16:" + bigT[:MaxTransactionIDLen] + "1:y1:qe"
	m, err := Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse(%q): %v", in, err)
	}
	if m.T != bigT[:MaxTransactionIDLen] {
		t.Errorf("T = %q", m.T)
	}
}

// Nesting up to MaxDepth is fine: unknown keys may carry structure.
func TestParseDepthLimitExact(t *testing.T) {
	in := "d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:z" +
		strings.Repeat("l", MaxDepth-1) + strings.Repeat("e", MaxDepth-1) + "e"
	if _, err := Parse([]byte(in)); err != nil {
		t.Fatalf("Parse of depth %d: %v", MaxDepth, err)
	}
}

// Every proper prefix of a valid message is invalid, and Parse says so
// rather than panicking or returning a half-filled message.
func TestParseTruncated(t *testing.T) {
	for _, g := range goldens {
		for n := 0; n < len(g.want); n++ {
			_, err := Parse([]byte(g.want[:n]))
			if err == nil {
				t.Fatalf("%s: Parse of %d-byte prefix %q succeeded", g.name, n, g.want[:n])
			}
			if !errors.Is(err, ErrNotDict) && !errors.Is(err, ErrTooDeep) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: prefix %d: unclassified error %v", g.name, n, err)
			}
		}
	}
}

// A string length far beyond the packet must be refused without
// allocating it: Parse bounds strings by the packet's own length.
func TestParseHugeLengthDoesNotAllocate(t *testing.T) {
	inputs := []string{
		"d1:t999999999:aa1:y1:qe",
		"d1:t2:aa1:y1:q1:z99999999:xe",
		"d1:ad2:id99999999:" + id20 + tail,
		"d1:rd2:id20:" + id20 + "6:valuesl99999999:axje.uee" + rtail,
		"d1:rd2:id20:" + id20 + "5:nodes99999999:" + node4Compact + rtail,
		"d1:el99999999:xe1:t2:aa1:y1:ee",
	}
	for _, in := range inputs {
		b := []byte(in)
		if _, err := Parse(b); err == nil {
			t.Fatalf("Parse(%q) succeeded", in)
		}
		var before, after runtime.MemStats
		const runs = 20
		runtime.ReadMemStats(&before)
		for range runs {
			_, _ = Parse(b)
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 1<<20 {
			t.Errorf("Parse(%q) allocates %d bytes per call", in, per)
		}
	}
}

// Unknown keys are ignored at every level, so that extensions do not break
// older nodes (BEP 5: "nodes should ignore keys they do not understand").
func TestParseIgnoresUnknownKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Msg
	}{
		{
			name: "top level and arguments",
			in: "d1:ad2:id20:" + id20 + "3:zzzi1e4:zzzzl1:xd1:ki2eeee" +
				"1:q4:ping1:t2:aa1:y1:q2:zzd1:ai1e1:bl0:eee",
			want: Msg{T: "aa", Y: "q", Q: "ping", A: &Args{ID: id(id20)}},
		},
		{
			name: "response body",
			in:   "d1:rd2:id20:" + id20 + "1:p3:xyz7:samplesi9ee1:t2:aa1:y1:r1:v4:UT01e",
			want: Msg{T: "aa", Y: "r", R: &Return{ID: id(id20)}, V: "UT01"},
		},
		{
			name: "unknown method with unknown arguments",
			in:   "d1:ad2:id20:" + id20 + "1:k32:0123456789abcdef0123456789abcdefe1:q3:put1:t1:x1:y1:qe",
			want: Msg{T: "x", Y: "q", Q: "put", A: &Args{ID: id(id20)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse:\n got %#v\nwant %#v", got, tc.want)
			}
			// Re-encoding drops what we did not understand.
			if _, err := Parse(encode(t, &got)); err != nil {
				t.Errorf("re-encoded message does not parse: %v", err)
			}
		})
	}
}

// An IPv4-mapped IPv6 address is IPv4 on the wire: 6-byte peers, 26-byte
// nodes, and never in nodes6.
func TestMappedAddressesEncodeAsIPv4(t *testing.T) {
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:1.2.3.4"), 6881)
	n := NodeInfo{ID: node4.ID, Addr: mapped}

	b, err := Nodes{n}.MarshalBencode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "26:" + node4Compact; string(b) != want {
		t.Errorf("Nodes{mapped} = %q, want %q", b, want)
	}
	b, err = Nodes6{n}.MarshalBencode()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "0:" {
		t.Errorf("Nodes6{mapped} = %q, want it skipped", b)
	}
	b, err = Peers{mapped}.MarshalBencode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "l6:\x01\x02\x03\x04\x1a\xe1e"; string(b) != want {
		t.Errorf("Peers{mapped} = %q, want %q", b, want)
	}
	b, err = Addr(mapped).MarshalBencode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "6:\x01\x02\x03\x04\x1a\xe1"; string(b) != want {
		t.Errorf("Addr(mapped) = %q, want %q", b, want)
	}
	if got := AppendAddrPort([]byte("x"), mapped); string(got) != "x\x01\x02\x03\x04\x1a\xe1" {
		t.Errorf("AppendAddrPort = %q", got)
	}

	// Decoding an 18-byte mapped peer yields the plain IPv4 address.
	p, err := ParseAddrPort([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04\x1a\xe1"))
	if err != nil {
		t.Fatal(err)
	}
	if p != ap("1.2.3.4:6881") {
		t.Errorf("ParseAddrPort(mapped) = %v, want 1.2.3.4:6881", p)
	}
}

// Each key carries only its own family: IPv6 contacts are left out of
// nodes and IPv4 ones out of nodes6.
func TestNodesSplitByFamily(t *testing.T) {
	all := []NodeInfo{node4, node6}
	b4, err := Nodes(all).MarshalBencode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "26:" + node4Compact; string(b4) != want {
		t.Errorf("Nodes = %q, want %q", b4, want)
	}
	b6, err := Nodes6(all).MarshalBencode()
	if err != nil {
		t.Fatal(err)
	}
	if want := "38:" + node6Compact; string(b6) != want {
		t.Errorf("Nodes6 = %q, want %q", b6, want)
	}
	var n4 Nodes
	var n6 Nodes6
	if err := n4.UnmarshalBencode(b4); err != nil || !reflect.DeepEqual(n4, Nodes{node4}) {
		t.Errorf("Nodes round trip = %v, %v", n4, err)
	}
	if err := n6.UnmarshalBencode(b6); err != nil || !reflect.DeepEqual(n6, Nodes6{node6}) {
		t.Errorf("Nodes6 round trip = %v, %v", n6, err)
	}
}

func TestParseAddrPortLengths(t *testing.T) {
	for n := 0; n <= 20; n++ {
		_, err := ParseAddrPort(make([]byte, n))
		if ok := n == PeerLen || n == Peer6Len; ok != (err == nil) {
			t.Errorf("ParseAddrPort(%d bytes): err = %v", n, err)
		}
	}
}

// A contact without an address has no compact form: it must be left out
// of both keys rather than written as a short record that makes the whole
// message unparseable for the receiver. (Nodes6 used to write a 22-byte
// record for it.)
func TestNodesSkipInvalidAddr(t *testing.T) {
	bad := NodeInfo{ID: node4.ID}
	for _, tc := range []struct {
		name string
		v    interface{ MarshalBencode() ([]byte, error) }
		want string
	}{
		{"Nodes", Nodes{bad, node4}, "26:" + node4Compact},
		{"Nodes6", Nodes6{bad, node6}, "38:" + node6Compact},
	} {
		b, err := tc.v.MarshalBencode()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s with a zero address = %q, want %q", tc.name, b, tc.want)
		}
	}
	m := Msg{T: "aa", Y: KindResponse, R: &Return{ID: id(id20), Nodes: Nodes{bad}, Nodes6: Nodes6{bad}}}
	if _, err := Parse(encode(t, &m)); err != nil {
		t.Errorf("response with address-less contacts does not parse back: %v", err)
	}
}

// A string whose length runs past the end of the datagram is refused by
// the head scan wherever it stands (a key, t, an unknown key's value, deep
// in a list), as metadata's walker refuses it in a torrent; the same
// datagram with the right length is walked.
func TestScanHeadRefusesOverlongStrings(t *testing.T) {
	for _, tmpl := range []string{
		"d1:t2:aa1:y1:q1:x%se",
		"d1:t2:aa1:y1:q1:xll%seee",
		"d1:t%s1:y1:qe",
		"d%si1e1:t2:aa1:y1:qe",
	} {
		for _, c := range overlongCases(tmpl) {
			if h := scanHead([]byte(c.b)); h.ok != c.ok || h.tooDeep {
				t.Errorf("%q: head ok %v, tooDeep %v; want ok %v", c.b, h.ok, h.tooDeep, c.ok)
			}
			if _, err := Parse([]byte(c.b)); !c.ok && !errors.Is(err, ErrMalformed) {
				t.Errorf("%q: Parse: %v, want ErrMalformed", c.b, err)
			}
		}
	}
}

type overlongCase struct {
	b  string
	ok bool
}

// overlongCases puts the string "aa" where tmpl has %s: with its length,
// with a length one past the end of the input, and with one past int64.
func overlongCases(tmpl string) []overlongCase {
	at := strings.Index(tmpl, "%s")
	rest := len("aa") + len(tmpl) - at - len("%s") // bytes after the ':'
	return []overlongCase{
		{fmt.Sprintf(tmpl, "2:aa"), true},
		{fmt.Sprintf(tmpl, fmt.Sprintf("%d:aa", rest+1)), false},
		{fmt.Sprintf(tmpl, "99999999999999999999:aa"), false},
	}
}
