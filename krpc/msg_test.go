package krpc

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"node/routing"
)

// --- helpers shared by the package's tests ---

// id turns a 20-character string into an ID, as the BEP 5 examples write them.
func id(s string) routing.ID {
	v, err := routing.IDFromBytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return v
}

func idp(s string) *routing.ID { v := id(s); return &v }

func intp(i int) *int { return &i }

// unhex decodes "64 31 3a ..."-style hex, ignoring white space and "#"
// comments that run to the end of a line.
func unhex(s string) string {
	var h strings.Builder
	for line := range strings.Lines(s) {
		line, _, _ = strings.Cut(line, "#")
		h.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		panic(err)
	}
	return string(b)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// normalize maps empty slices to nil: "nodes0:" and an absent nodes key
// mean the same thing, and omitempty writes only the latter.
func normalize(m Msg) Msg {
	if m.A != nil {
		a := *m.A
		if len(a.Want) == 0 {
			a.Want = nil
		}
		m.A = &a
	}
	if m.R != nil {
		r := *m.R
		if len(r.Nodes) == 0 {
			r.Nodes = nil
		}
		if len(r.Nodes6) == 0 {
			r.Nodes6 = nil
		}
		if len(r.Values) == 0 {
			r.Values = nil
		}
		m.R = &r
	}
	return m
}

func msgEqual(a, b Msg) bool { return reflect.DeepEqual(normalize(a), normalize(b)) }

func encode(t testing.TB, m *Msg) []byte {
	t.Helper()
	b := m.Append(nil)
	return b
}

// --- golden messages ---

// Addresses and nodes used by the examples that BEP 5 leaves as
// placeholders ("def456..." is not a valid compact node string).
var (
	node4 = NodeInfo{ID: id("ZYXWVUTSRQPONMLKJIHG"), Addr: ap("1.2.3.4:6881")}
	// node4 compact: ID, 01 02 03 04, port 0x1ae1.
	node4Compact = "ZYXWVUTSRQPONMLKJIHG\x01\x02\x03\x04\x1a\xe1"
	node6        = NodeInfo{ID: id("zyxwvutsrqponmlkjihg"), Addr: ap("[2001:db8::1]:6881")}
	node6Compact = "zyxwvutsrqponmlkjihg" + unhex("20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 1a e1")
)

type golden struct {
	name string
	msg  Msg
	want string // exact wire bytes
}

// goldens are the wire forms every encoder must produce and every parser
// must accept. The first group is copied verbatim from BEP 5
// (https://www.bittorrent.org/beps/bep_0005.html, "KRPC Protocol" and
// "DHT Queries" sections), except where the BEP uses "def456..." as a
// placeholder for compact node info.
var goldens = []golden{
	// BEP 5, "ping": the query.
	{
		name: "bep5/ping/query",
		msg:  Msg{T: "aa", Y: "q", Q: "ping", A: &Args{ID: id("abcdefghij0123456789")}},
		want: "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
	},
	// BEP 5, "ping": the response. Also the announce_peer response, which
	// BEP 5 gives as the identical message.
	{
		name: "bep5/ping/response",
		msg:  Msg{T: "aa", Y: "r", R: &Return{ID: id("mnopqrstuvwxyz123456")}},
		want: "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
	},
	// BEP 5, "find_node": the query.
	{
		name: "bep5/find_node/query",
		msg: Msg{T: "aa", Y: "q", Q: "find_node", A: &Args{
			ID: id("abcdefghij0123456789"), Target: idp("mnopqrstuvwxyz123456"),
		}},
		want: "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
	},
	// BEP 5, "find_node": the response, with one real node for "def456...".
	{
		name: "bep5/find_node/response",
		msg:  Msg{T: "aa", Y: "r", R: &Return{ID: id("0123456789abcdefghij"), Nodes: Nodes{node4}}},
		want: "d1:rd2:id20:0123456789abcdefghij5:nodes26:" + node4Compact + "e1:t2:aa1:y1:re",
	},
	// BEP 5, "get_peers": the query.
	{
		name: "bep5/get_peers/query",
		msg: Msg{T: "aa", Y: "q", Q: "get_peers", A: &Args{
			ID: id("abcdefghij0123456789"), InfoHash: idp("mnopqrstuvwxyz123456"),
		}},
		want: "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
	},
	// BEP 5, "get_peers": the response with peers. "axje.u" and "idhtnm"
	// happen to be valid 6-byte compact peers: 97.120.106.101:0x2e75 and
	// 105.100.104.116:0x6e6d.
	{
		name: "bep5/get_peers/response_values",
		msg: Msg{T: "aa", Y: "r", R: &Return{
			ID: id("abcdefghij0123456789"), Token: "aoeusnth",
			Values: Peers{ap("97.120.106.101:11893"), ap("105.100.104.116:28269")},
		}},
		want: "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
	},
	// BEP 5, "get_peers": the response with closest nodes.
	{
		name: "bep5/get_peers/response_nodes",
		msg: Msg{T: "aa", Y: "r", R: &Return{
			ID: id("abcdefghij0123456789"), Token: "aoeusnth", Nodes: Nodes{node4},
		}},
		want: "d1:rd2:id20:abcdefghij01234567895:nodes26:" + node4Compact + "5:token8:aoeusnthe1:t2:aa1:y1:re",
	},
	// BEP 5, "announce_peer": the query, with implied_port.
	{
		name: "bep5/announce_peer/query_implied_port",
		msg: Msg{T: "aa", Y: "q", Q: "announce_peer", A: &Args{
			ID: id("abcdefghij0123456789"), ImpliedPort: 1, InfoHash: idp("mnopqrstuvwxyz123456"),
			Port: intp(6881), Token: "aoeusnth",
		}},
		want: "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
	},
	// BEP 5, "announce_peer" without implied_port (it is optional).
	{
		name: "bep5/announce_peer/query",
		msg: Msg{T: "aa", Y: "q", Q: "announce_peer", A: &Args{
			ID: id("abcdefghij0123456789"), InfoHash: idp("mnopqrstuvwxyz123456"),
			Port: intp(6881), Token: "aoeusnth",
		}},
		want: "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
	},
	// BEP 5, "Errors": the generic error example (spelling as in the BEP).
	{
		name: "bep5/error/generic",
		msg:  Msg{T: "aa", Y: "e", E: &Error{Code: 201, Msg: "A Generic Error Ocurred"}},
		want: "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
	},

	// Port 0 is present, not omitted: Port is a pointer for that reason.
	{
		name: "announce_peer/port_zero",
		msg: Msg{T: "\x00\x01", Y: "q", Q: "announce_peer", A: &Args{
			ID: id("abcdefghij0123456789"), InfoHash: idp("mnopqrstuvwxyz123456"),
			Port: intp(0), Token: "tok",
		}},
		want: "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e5:token3:toke1:q13:announce_peer1:t2:\x00\x011:y1:qe",
	},
	// The other BEP 5 error codes, with a binary transaction ID.
	{
		name: "error/203_binary_t",
		msg:  Msg{T: "\xff\x00", Y: "e", E: &Error{Code: ErrorCodeProtocol, Msg: "malformed query"}},
		want: "d1:eli203e15:malformed querye1:t2:\xff\x001:y1:ee",
	},
	{
		name: "error/204_with_version",
		msg:  Msg{T: "zz", Y: "e", E: &Error{Code: ErrorCodeMethodUnknown, Msg: "Method Unknown"}, V: "LT\x01\x02"},
		want: "d1:eli204e14:Method Unknowne1:t2:zz1:v4:LT\x01\x021:y1:ee",
	},
	// BEP 43: read-only nodes flag their queries with ro=1.
	{
		name: "bep43/ro",
		msg:  Msg{T: "aa", Y: "q", Q: "ping", A: &Args{ID: id("abcdefghij0123456789")}, RO: 1},
		want: "d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t2:aa1:y1:qe",
	},
	// BEP 42: a response tells the querier its external address in "ip".
	{
		name: "bep42/ip4",
		msg: Msg{T: "aa", Y: "r", R: &Return{ID: id("mnopqrstuvwxyz123456")},
			IP: (*Addr)(new(ap("124.31.75.21:6881")))},
		want: "d2:ip6:\x7c\x1f\x4b\x15\x1a\xe11:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
	},
	{
		name: "bep42/ip6",
		msg: Msg{T: "aa", Y: "r", R: &Return{ID: id("mnopqrstuvwxyz123456")},
			IP: (*Addr)(new(ap("[2001:db8::1]:6881")))},
		want: unhex("64 32 3a 69 70 31 38 3a 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 1a e1") +
			"1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
	},
	// BEP 32: find_node asking for both families.
	{
		name: "bep32/want",
		msg: Msg{T: "aa", Y: "q", Q: "find_node", A: &Args{
			ID: id("abcdefghij0123456789"), Target: idp("mnopqrstuvwxyz123456"), Want: []string{"n4", "n6"},
		}},
		want: "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node1:t2:aa1:y1:qe",
	},
	// BEP 32: a response carrying both nodes and nodes6, written as hex in
	// full so the 38-byte record layout is visible.
	{
		name: "bep32/nodes6",
		msg: Msg{T: "aa", Y: "r", R: &Return{
			ID: id("0123456789abcdefghij"), Nodes: Nodes{node4}, Nodes6: Nodes6{node6},
		}},
		want: unhex(`
			64                                              # d
			31 3a 72 64                                     # 1:r d
			32 3a 69 64 32 30 3a                            # 2:id 20:
			30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 67 68 69 6a
			35 3a 6e 6f 64 65 73 32 36 3a                   # 5:nodes 26:
			5a 59 58 57 56 55 54 53 52 51 50 4f 4e 4d 4c 4b 4a 49 48 47
			01 02 03 04 1a e1
			36 3a 6e 6f 64 65 73 36 33 38 3a                # 6:nodes6 38:
			7a 79 78 77 76 75 74 73 72 71 70 6f 6e 6d 6c 6b 6a 69 68 67
			20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 1a e1
			65                                              # e
			31 3a 74 32 3a 61 61                            # 1:t 2:aa
			31 3a 79 31 3a 72                               # 1:y 1:r
			65                                              # e`),
	},
	// get_peers response with an IPv6 peer (18-byte value) next to an IPv4 one.
	{
		name: "get_peers/values_mixed_families",
		msg: Msg{T: "aa", Y: "r", R: &Return{
			ID: id("abcdefghij0123456789"), Token: "t",
			Values: Peers{ap("10.0.0.1:1"), ap("[2001:db8::1]:6881")},
		}},
		want: "d1:rd2:id20:abcdefghij01234567895:token1:t6:valuesl6:\x0a\x00\x00\x01\x00\x0118:" +
			unhex("20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 1a e1") + "ee1:t2:aa1:y1:re",
	},
	// Everything at once: every optional field of a message set.
	{
		name: "all_top_level_fields",
		msg: Msg{T: "0123456789abcdef", Y: "r", R: &Return{ID: id("mnopqrstuvwxyz123456")},
			V: "KR01", IP: (*Addr)(new(ap("127.0.0.1:1"))), RO: 1},
		want: "d2:ip6:\x7f\x00\x00\x01\x00\x011:rd2:id20:mnopqrstuvwxyz123456e2:roi1e1:t16:0123456789abcdef1:v4:KR011:y1:re",
	},
}

func TestGoldenEncode(t *testing.T) {
	for _, tc := range goldens {
		t.Run(tc.name, func(t *testing.T) {
			got := encode(t, &tc.msg)
			if string(got) != tc.want {
				t.Errorf("Append:\n got %q\nwant %q\n got % x\nwant % x", got, tc.want, got, tc.want)
			}
		})
	}
}

func TestGoldenParse(t *testing.T) {
	for _, tc := range goldens {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.want))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.want, err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Errorf("Parse(%q):\n got %#v\nwant %#v", tc.want, got, tc.msg)
			}
		})
	}
}

// Append must append, leaving the prefix it was given alone.
func TestAppendKeepsPrefix(t *testing.T) {
	m := goldens[0].msg
	prefix := []byte("prefix")
	got := m.Append(bytes.Clone(prefix))
	if want := "prefix" + goldens[0].want; string(got) != want {
		t.Errorf("Append(prefix) = %q, want %q", got, want)
	}
}

func TestSenderIDAndReadOnly(t *testing.T) {
	q := Msg{T: "a", Y: "q", Q: "ping", A: &Args{ID: id("abcdefghij0123456789")}, RO: 1}
	r := Msg{T: "a", Y: "r", R: &Return{ID: id("mnopqrstuvwxyz123456")}}
	e := Msg{T: "a", Y: "e", E: &Error{Code: 201}}
	if got := q.SenderID(); got != id("abcdefghij0123456789") {
		t.Errorf("query SenderID = %v", got)
	}
	if got := r.SenderID(); got != id("mnopqrstuvwxyz123456") {
		t.Errorf("response SenderID = %v", got)
	}
	if got := e.SenderID(); !got.IsZero() {
		t.Errorf("error SenderID = %v, want zero", got)
	}
	if !q.ReadOnly() || r.ReadOnly() {
		t.Errorf("ReadOnly: query %v (want true), response %v (want false)", q.ReadOnly(), r.ReadOnly())
	}
	// Only ro=1 means read-only.
	if (&Msg{RO: 2}).ReadOnly() {
		t.Error("ro=2 reported read-only")
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Code: 201, Msg: "A Generic Error Ocurred"}
	if got, want := e.Error(), "krpc error 201: A Generic Error Ocurred"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// Some implementations send only the code; a missing or non-string message
// is tolerated and decodes as "".
func TestErrorUnmarshalLenient(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Error
	}{
		{"li201ee", Error{Code: 201}},
		{"li202ei5ee", Error{Code: 202}},
		{"li203e3:badi7ee", Error{Code: 203, Msg: "bad"}},
		{"li-1e0:e", Error{Code: -1}},
	} {
		e := Error{Code: 999, Msg: "stale"} // fields must be overwritten
		if err := e.UnmarshalBencode([]byte(tc.in)); err != nil {
			t.Errorf("UnmarshalBencode(%q): %v", tc.in, err)
			continue
		}
		if e != tc.want {
			t.Errorf("UnmarshalBencode(%q) = %+v, want %+v", tc.in, e, tc.want)
		}
	}
	for _, bad := range []string{"", "le", "i201e", "3:abc", "l3:abce", "d1:ai1ee", "li201e", "li99999999999999999999ee"} {
		var e Error
		if err := e.UnmarshalBencode([]byte(bad)); err == nil {
			t.Errorf("UnmarshalBencode(%q) = %+v, want error", bad, e)
		}
	}
}
