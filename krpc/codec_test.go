package krpc

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"node/routing"
)

// randomMsg builds a message exercising every field, with nil, empty and
// full variants of each, and addresses of both families, mapped, invalid
// and zoned, so the hand-written encoder meets every branch the reflection
// encoder has.
func randomMsg(r *rand.Rand) Msg {
	pick := func() bool { return r.IntN(2) == 0 }
	str := func() string {
		b := make([]byte, r.IntN(5))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	num := func() int { return []int{0, 1, -1, 7, 65535, -1 << 40}[r.IntN(6)] }
	addr := func() netip.AddrPort {
		switch r.IntN(5) {
		case 0:
			return netip.AddrPort{}
		case 1:
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{1, 2, 3, byte(r.IntN(256))}), uint16(r.IntN(65536)))
		case 2:
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 9, 15: 1}), 80)
		case 3:
			return netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 6881)
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0: 0x20, 1: 1, 15: byte(r.IntN(256))}), 6881)
	}
	idp := func() *routing.ID { v := routing.RandomID(r); return &v }
	m := Msg{T: str(), Y: []string{KindQuery, KindResponse, KindError, ""}[r.IntN(4)], V: str(), RO: num()}
	if pick() {
		m.Q = str()
	}
	if pick() {
		a := &Args{ID: routing.RandomID(r), Token: str(), ImpliedPort: num(), Scrape: num(), NoSeed: num(), Seed: num()}
		if pick() {
			a.Target = idp()
		}
		if pick() {
			a.InfoHash = idp()
		}
		if pick() {
			p := num()
			a.Port = &p
		}
		if pick() {
			a.Want = []string{}
			for range r.IntN(3) {
				a.Want = append(a.Want, str())
			}
		}
		m.A = a
	}
	if pick() {
		ret := &Return{ID: routing.RandomID(r), Token: str(), Num: num(), Interval: num()}
		if pick() {
			ret.Nodes = Nodes{}
			for range r.IntN(4) {
				ret.Nodes = append(ret.Nodes, NodeInfo{ID: routing.RandomID(r), Addr: addr()})
			}
		}
		if pick() {
			ret.Nodes6 = Nodes6{}
			for range r.IntN(4) {
				ret.Nodes6 = append(ret.Nodes6, NodeInfo{ID: routing.RandomID(r), Addr: addr()})
			}
		}
		if pick() {
			ret.Values = Peers{}
			for range r.IntN(4) {
				ret.Values = append(ret.Values, addr())
			}
		}
		if pick() {
			ret.BFsd = &Bloom{1: 2, 255: 9}
		}
		if pick() {
			ret.BFpe = &Bloom{}
		}
		if pick() {
			ret.Samples = Samples{}
			for range r.IntN(3) {
				ret.Samples = append(ret.Samples, routing.RandomID(r))
			}
		}
		m.R = ret
	}
	if pick() {
		m.E = &Error{Code: num(), Msg: str()}
	}
	if pick() {
		a := Addr(addr())
		m.IP = &a
	}
	return m
}

// The hand-written encoder writes what the reflection encoder writes.
func TestAppendMatchesReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		m := randomMsg(r)
		want, err := bencode.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.Append([]byte("prefix"))
		if !bytes.Equal(got[len("prefix"):], want) || string(got[:6]) != "prefix" {
			t.Fatalf("message %s\n Append %q\nMarshal %q", describe(m), got, want)
		}
	}
	for _, g := range goldens {
		if got := g.msg.Append(nil); string(got) != g.want {
			t.Errorf("%s: %q, want %q", g.name, got, g.want)
		}
	}
}

// An answer encodes into a buffer with room without allocating.
func TestAppendDoesNotAllocate(t *testing.T) {
	m := getPeersResponse()
	buf := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(100, func() { buf = m.Append(buf[:0]) }); n != 0 {
		t.Fatalf("%v allocations per Append", n)
	}
}

// checkDecodeQuery holds decodeQuery to Parse: what the fast path accepts,
// Parse accepts with an equal message, borrowed strings or not.
func checkDecodeQuery(t *testing.T, in []byte) bool {
	t.Helper()
	var q queryBuf
	if !q.decode(in) {
		return false
	}
	// The Transport tries the fast path only on what the walk calls a
	// query.
	if h := scanHead(in); !h.ok || string(h.y) != KindQuery {
		t.Fatalf("decodeQuery accepted %q, scanHead sees %+v", in, h)
	}
	want, err := Parse(in)
	if err != nil {
		t.Fatalf("decodeQuery accepted %q, Parse refuses it: %v", in, err)
	}
	if !reflect.DeepEqual(q.m, want) {
		t.Fatalf("decodeQuery(%q)\n got %s\nwant %s", in, describe(q.m), describe(want))
	}
	cp := bytes.Clone(in)
	qb := queryBuf{borrowStrings: true}
	if !qb.decode(cp) || !reflect.DeepEqual(qb.m, want) {
		t.Fatalf("borrowing decodeQuery(%q) differs: %s", in, describe(qb.m))
	}
	return true
}

// FuzzDecodeQuery feeds the same bytes to the fast query decoder and to
// Parse.
func FuzzDecodeQuery(f *testing.F) {
	for _, g := range goldens {
		f.Add([]byte(g.want))
	}
	for _, s := range fastQuerySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeQuery(t, in) })
}

var fastQuerySeeds = []string{
	"d1:ad2:id20:" + id20 + "12:implied_porti1e9:info_hash20:" + id20 + "6:noseedi1e4:porti6881e6:scrapei1e4:seedi1e6:target20:" + id20 +
		"5:token8:abcdefgh4:wantl2:n42:n6ee2:ip6:\x7f\x00\x00\x01\x1a\xe11:q13:announce_peer2:roi1e1:t4:abcd1:v4:UT011:y1:qe",
	"d1:ad2:id20:" + id20 + "3:zzzi1e4:zzzzl1:xd1:ki2eeee1:q4:ping1:t2:aa1:y1:q2:zzd1:ai1e1:bl0:eee",
	"d1:ad2:id20:" + id20 + "4:wantlee1:q9:find_node1:t2:aa1:y1:qe",
	// BEP 32 want: one family, unknown entries, more entries than the fast
	// path keeps (a want flood), an entry that is not a string.
	"d1:ad2:id20:" + id20 + "9:info_hash20:" + id20 + "4:wantl2:n6ee1:q9:get_peers1:t2:aa1:y1:qe",
	"d1:ad2:id20:" + id20 + "6:target20:" + id20 + "4:wantl2:n52:xx0:ee1:q9:find_node1:t2:aa1:y1:qe",
	"d1:ad2:id20:" + id20 + "6:target20:" + id20 + "4:wantl" + strings.Repeat("2:n42:n6", 50) + "ee1:q9:find_node1:t2:aa1:y1:qe",
	"d1:ad2:id20:" + id20 + "6:target20:" + id20 + "4:wantli4eee1:q9:find_node1:t2:aa1:y1:qe",
	"d1:ad2:id20:" + id20 + "4:porti-1ee1:q3:put1:t1:x1:y1:qe",
	"d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:z" + strings.Repeat("l", MaxDepth-1) + strings.Repeat("e", MaxDepth-1) + "e",
	"d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:z" + strings.Repeat("l", MaxDepth) + strings.Repeat("e", MaxDepth) + "e",
	"d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:zd1:bi1e1:ai2eee", // unsorted nested keys
	"d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:zi00ee",
	"d1:ad2:id20:" + id20 + "e1:q4:ping1:t02:aa1:y1:qe",
	"d1:t2:aa1:ad2:id20:" + id20 + "e1:q4:ping1:y1:qe", // unsorted top level
	"d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:qee",
	"d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:ri1ee",
}

// The seeds decode on the fast path where they should, and the cases the
// fast path refuses are ones Parse decides.
func TestDecodeQuerySeeds(t *testing.T) {
	accepted := 0
	for _, s := range fastQuerySeeds {
		if checkDecodeQuery(t, []byte(s)) {
			accepted++
		}
	}
	for _, g := range goldens {
		if checkDecodeQuery(t, []byte(g.want)) != (g.msg.Y == KindQuery && g.msg.E == nil && g.msg.R == nil) {
			t.Errorf("%s: fast path accepted %v", g.name, g.msg.Y == KindQuery)
		}
	}
	if accepted != 7 {
		t.Errorf("fast path accepted %d of the seeds, want 7", accepted)
	}
}

// A query decodes without allocating when strings are borrowed.
func TestDecodeQueryDoesNotAllocate(t *testing.T) {
	in := []byte(goldens[4].want)
	q := queryBuf{borrowStrings: true}
	if n := testing.AllocsPerRun(100, func() {
		if !q.decode(in) {
			t.Fatal("golden get_peers refused")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per query", n)
	}
}

// A clone shares no storage with the buffer it came from.
func TestQueryBufClone(t *testing.T) {
	in := []byte(fastQuerySeeds[0])
	var q queryBuf
	if !q.decode(in) {
		t.Fatal("seed refused")
	}
	c := q.clone()
	want, _ := Parse(in)
	q.decode([]byte(goldens[0].want)) // reuse the original buffer
	if !reflect.DeepEqual(c.m, want) {
		t.Fatalf("clone changed with its source: %s", describe(c.m))
	}
}
