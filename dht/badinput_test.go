package dht

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// rawPeer talks to a Node through a plain UDP socket, so it can send bytes
// no Transport would.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
	node netip.AddrPort
	id   routing.ID
	seq  int
	buf  []byte
	// queries the node sent us (its verification pings), oldest first.
	queries []krpc.Msg
}

func newRawPeer(t *testing.T, subnet, host int, node netip.AddrPort, id routing.ID) *rawPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, byte(subnet), byte(host))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, conn: c, node: node, id: id, buf: make([]byte, 65536)}
}

func (p *rawPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *rawPeer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(b, p.node); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// read returns the next datagram from the node, parsed; a packet the node
// sends that does not parse is a test failure.
func (p *rawPeer) read(deadline time.Time) (krpc.Msg, []byte, error) {
	p.t.Helper()
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, from, err := p.conn.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			return krpc.Msg{}, nil, err
		}
		if from != p.node {
			continue
		}
		b := append([]byte(nil), p.buf[:n]...)
		m, err := krpc.Parse(b)
		if err != nil {
			p.t.Fatalf("the node sent a packet that does not parse (%v): %q", err, b)
		}
		return m, b, nil
	}
}

// sync pings the node with a fresh transaction ID and reads until the
// answer arrives. The node reads its socket on one goroutine, in order, so
// by then it has handled everything sent before. It returns the other
// replies received meanwhile; the node's own queries go to p.queries.
func (p *rawPeer) sync() []krpc.Msg {
	p.t.Helper()
	p.seq++
	tid := fmt.Sprintf("s%d", p.seq)
	p.send(rawQuery(tid, krpc.MethodPing, rawID(p.id)))
	var others []krpc.Msg
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, b, err := p.read(deadline)
		if err != nil {
			p.t.Fatalf("no answer to ping %q: %v (the node stopped answering?)", tid, err)
		}
		switch {
		case m.Y == krpc.KindQuery:
			p.queries = append(p.queries, m)
		case m.T == tid:
			if m.Y != krpc.KindResponse || m.R.ID.IsZero() {
				p.t.Fatalf("ping answered with %q", b)
			}
			return others
		default:
			others = append(others, m)
		}
	}
}

// bs is a bencode string.
func bs(s string) string { return fmt.Sprintf("%d:%s", len(s), s) }

func rawID(id routing.ID) string { return "2:id" + bs(string(id[:])) }

// rawQuery builds a query by hand; args is the inside of the "a" dict.
func rawQuery(tid, method, args string) []byte {
	return []byte("d1:ad" + args + "e1:q" + bs(method) + "1:t" + bs(tid) + "1:y1:qe")
}

func statsDelta(a, b krpc.Stats) krpc.Stats {
	return krpc.Stats{
		PacketsIn: b.PacketsIn - a.PacketsIn, PacketsOut: b.PacketsOut - a.PacketsOut,
		QueriesIn: b.QueriesIn - a.QueriesIn, QueriesOut: b.QueriesOut - a.QueriesOut,
		ResponsesIn: b.ResponsesIn - a.ResponsesIn, ErrorsIn: b.ErrorsIn - a.ErrorsIn,
		Timeouts: b.Timeouts - a.Timeouts, Oversized: b.Oversized - a.Oversized,
		Malformed: b.Malformed - a.Malformed, Unmatched: b.Unmatched - a.Unmatched,
		Answered203: b.Answered203 - a.Answered203, SendErrors: b.SendErrors - a.SendErrors,
	}
}

func transportStats(t *testing.T, ctx context.Context, n *Node) krpc.Stats {
	t.Helper()
	s, err := n.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s.Transport
}

// exchange sends pkts, syncs, and returns the counters' change (the sync
// ping included: one packet and one query in) and the replies.
func exchange(t *testing.T, ctx context.Context, n *Node, p *rawPeer, pkts ...[]byte) (krpc.Stats, []krpc.Msg) {
	t.Helper()
	before := transportStats(t, ctx, n)
	for _, b := range pkts {
		p.send(b)
	}
	replies := p.sync()
	return statsDelta(before, transportStats(t, ctx, n)), replies
}

// wantDelta compares the counters that only the packets sent can move.
func wantDelta(t *testing.T, got krpc.Stats, in, malformed, queries, answered203, oversized, unmatched, responses uint64) {
	t.Helper()
	type row struct {
		name      string
		got, want uint64
	}
	for _, r := range []row{
		{"PacketsIn", got.PacketsIn, in + 1},
		{"Malformed", got.Malformed, malformed},
		{"QueriesIn", got.QueriesIn, queries + 1},
		{"Answered203", got.Answered203, answered203},
		{"Oversized", got.Oversized, oversized},
		{"Unmatched", got.Unmatched, unmatched},
		{"ResponsesIn", got.ResponsesIn, responses},
	} {
		if r.got != r.want {
			t.Errorf("%s went up by %d, want %d (all: %+v)", r.name, r.got, r.want, got)
		}
	}
}

// wantErrors checks that replies are exactly KRPC errors with these
// transaction IDs and codes.
func wantErrors(t *testing.T, replies []krpc.Msg, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, m := range replies {
		if m.Y != krpc.KindError || m.E == nil {
			t.Errorf("unexpected reply %+v", m)
			continue
		}
		if _, dup := got[m.T]; dup {
			t.Errorf("two replies to %q", m.T)
		}
		got[m.T] = m.E.Code
	}
	for tid, code := range want {
		if c, ok := got[tid]; !ok {
			t.Errorf("no error reply to %q, want %d", tid, code)
		} else if c != code {
			t.Errorf("reply to %q: error %d, want %d", tid, c, code)
		}
	}
	for tid, c := range got {
		if _, ok := want[tid]; !ok {
			t.Errorf("unexpected error %d in reply to %q", c, tid)
		}
	}
}

// padPing is a ping padded with an unknown argument to exactly size bytes.
func padPing(tid string, id routing.ID, size int) []byte {
	for pad := size; pad >= 0; pad-- {
		b := rawQuery(tid, krpc.MethodPing, rawID(id)+"3:pad"+bs(strings.Repeat("x", pad)))
		if len(b) == size {
			return b
		}
	}
	panic("cannot pad")
}

func TestBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(34, 1))
	// A long query timeout keeps the node's verification ping to us open
	// while we answer it badly.
	n := startNode(t, 34, 1, func(c *Config) { c.QueryTimeout = 10 * time.Second })
	p := newRawPeer(t, 34, 2, n.Addr(), routing.RandomID(r))
	id := rawID(p.id)
	ih := routing.RandomID(r)
	p.sync() // first contact: the node starts verifying us with a ping

	t.Run("bad compact data in a response", func(t *testing.T) {
		deadline := time.Now().Add(5 * time.Second)
		for len(p.queries) == 0 {
			m, b, err := p.read(deadline)
			if err != nil {
				t.Fatalf("the node never pinged its new querier: %v", err)
			}
			if m.Y != krpc.KindQuery {
				t.Fatalf("unexpected %q", b)
			}
			p.queries = append(p.queries, m)
		}
		ping := p.queries[0]
		// A find_node while the node cache is thin (see verify).
		if ping.Q != krpc.MethodPing && ping.Q != krpc.MethodFindNode || ping.A.ID != n.ID() {
			t.Fatalf("node's query %+v, want its check", ping)
		}
		resp := func(body string) []byte {
			return []byte("d1:rd" + id + body + "e1:t" + bs(ping.T) + "1:y1:re")
		}
		bad := [][]byte{
			resp("5:nodes" + bs(strings.Repeat("n", 25))),
			resp("5:nodes" + bs(strings.Repeat("n", 27))),
			resp("6:nodes6" + bs(strings.Repeat("n", 37))),
			resp("6:valuesl" + bs("12345") + "e"),
			resp("6:valuesl" + bs("123456") + bs(strings.Repeat("v", 17)) + "e"),
			resp("6:valuesi5e"),
			[]byte("d2:ip" + bs("1234") + "1:rd" + id + "e1:t" + bs(ping.T) + "1:y1:re"),
			// And to a transaction never sent.
			[]byte("d1:rd" + id + "5:nodes" + bs(strings.Repeat("n", 25)) + "e1:t2:zz1:y1:re"),
		}
		d, replies := exchange(t, ctx, n, p, bad...)
		wantDelta(t, d, uint64(len(bad)), uint64(len(bad)), 0, 0, 0, 0, 0)
		wantErrors(t, replies, nil)
		if es, _ := n.Entries(ctx); len(es) != 0 {
			t.Fatalf("a malformed answer put us in the table: %v", es)
		}

		// The transaction is still open: a good answer completes it.
		good := resp("5:nodes" + bs(strings.Repeat("n", 26)))
		d, _ = exchange(t, ctx, n, p, good)
		wantDelta(t, d, 1, 0, 0, 0, 0, 0, 1)
		for {
			es, err := n.Entries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(es, func(e routing.Entry) bool { return e.ID == p.id && e.Addr == p.addr() }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("answered ping did not add us: %v", es)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("truncated", func(t *testing.T) {
		full := rawQuery("tr", krpc.MethodAnnouncePeer, id+"12:implied_porti1e9:info_hash"+bs(string(ih[:]))+"4:porti6881e5:token"+bs("12345678"))
		if _, err := krpc.Parse(full); err != nil {
			t.Fatalf("test setup: %v", err)
		}
		var pkts [][]byte
		for i := 1; i < len(full); i++ {
			pkts = append(pkts, full[:i])
		}
		d, replies := exchange(t, ctx, n, p, pkts...)
		wantDelta(t, d, uint64(len(pkts)), uint64(len(pkts)), 0, 0, 0, 0, 0)
		wantErrors(t, replies, nil)
	})

	t.Run("not a dict", func(t *testing.T) {
		pkts := [][]byte{
			{}, {0}, []byte("d"), []byte("de"), []byte("i42e"), []byte("4:spam"),
			[]byte("li1ei2ei3ei4ei5ei6ee"), []byte("l1:t2:aa1:y1:qe"),
			[]byte("d1:t2:aa1:y1:q"),               // no end
			[]byte("d1:t2:aa1:y1:qee"),             // trailing
			[]byte("d1:t2:aa1:y1:qex"),             // trailing, not 'e'
			[]byte("\xff\xfe\x00garbage\x00\x00e"), // binary
			[]byte("d1:t2:aa1:y1:q1:q4:ping1:ad2:id20:" + strings.Repeat("a", 20) + "e"), // unterminated
		}
		d, replies := exchange(t, ctx, n, p, pkts...)
		wantDelta(t, d, uint64(len(pkts)), uint64(len(pkts)), 0, 0, 0, 0, 0)
		wantErrors(t, replies, nil)
	})

	t.Run("wrong types", func(t *testing.T) {
		ihs := bs(string(ih[:]))
		answered := map[string][]byte{
			"w1": []byte("d1:ad" + id + "e1:qi1e1:t2:w11:y1:qe"),                                                          // q int
			"w2": []byte("d1:al" + id + "e1:q4:ping1:t2:w21:y1:qe"),                                                       // a list
			"w3": []byte("d1:a4:ping1:q4:ping1:t2:w31:y1:qe"),                                                             // a string
			"w4": rawQuery("w4", krpc.MethodPing, "2:idi5e"),                                                              // id int
			"w5": rawQuery("w5", krpc.MethodAnnouncePeer, id+"9:info_hash"+ihs+"4:port4:68815:token"+bs("12345678")),      // port string
			"w6": rawQuery("w6", krpc.MethodAnnouncePeer, id+"12:implied_port1:19:info_hash"+ihs+"5:token"+bs("1234567")), // implied_port string
			"w7": rawQuery("w7", krpc.MethodFindNode, id+"6:targetl"+ihs+"e"),                                             // target list
			"w8": rawQuery("w8", krpc.MethodGetPeers, id+"9:info_hashi1e"),                                                // info_hash int
			"w9": rawQuery("w9", krpc.MethodFindNode, id+"6:target"+ihs+"4:wanti4e"),                                      // want int
			"wa": []byte("d1:ad" + id + "e1:q4:ping2:rod1:xi1ee1:t2:wa1:y1:qe"),                                           // ro dict
			"wb": []byte("d1:ad" + id + "e1:q4:ping1:t2:wb1:vli1ee1:y1:qe"),                                               // v list
			"wc": rawQuery("wc", krpc.MethodAnnouncePeer, id+"9:info_hash"+ihs+"4:porti6881e5:tokeni5e"),                  // token int
			"wd": rawQuery("wd", "", id),                                                                                  // empty method
			"we": []byte("d1:q4:ping1:t2:we1:y1:qe"),                                                                      // no a
			"wf": rawQuery("wf", krpc.MethodPing, ""),                                                                     // no id
			"wg": rawQuery("wg", krpc.MethodPing, "2:idi-1e"),                                                             // negative int id
			"wh": rawQuery("wh", krpc.MethodAnnouncePeer, id+"9:info_hash"+ihs+"4:porti99999999999999999999999e"),         // int overflow
		}
		unanswered := [][]byte{
			[]byte("d1:ad" + id + "e1:q4:ping1:ti5e1:y1:qe"),                                 // t int
			[]byte("d1:ad" + id + "e1:q4:ping1:t0:1:y1:qe"),                                  // t empty
			[]byte("d1:ad" + id + "e1:q4:ping1:t" + bs(strings.Repeat("t", 17)) + "1:y1:qe"), // t too long
			[]byte("d1:ad" + id + "e1:q4:ping1:t2:x11:yi1ee"),                                // y int
			[]byte("d1:ad" + id + "e1:q4:ping1:t2:x21:y1:xe"),                                // unknown kind
			[]byte("d1:rl" + id + "e1:t2:x31:y1:re"),                                         // r list
			[]byte("d1:e4:oops1:t2:x41:y1:ee"),                                               // e string
			[]byte("d1:eli201ee1:t2:x51:y1:xe"),                                              // e under unknown kind
		}
		var pkts [][]byte
		want := map[string]int{}
		for tid, b := range answered {
			pkts = append(pkts, b)
			want[tid] = krpc.ErrorCodeProtocol
		}
		pkts = append(pkts, unanswered...)
		d, replies := exchange(t, ctx, n, p, pkts...)
		wantDelta(t, d, uint64(len(pkts)), uint64(len(pkts)), 0, uint64(len(answered)), 0, 0, 0)
		wantErrors(t, replies, want)
	})

	t.Run("deep nesting", func(t *testing.T) {
		deep := func(open, close string, k int) string {
			return strings.Repeat(open, k) + close + strings.Repeat("e", k)
		}
		pkts := [][]byte{
			rawQuery("n1", krpc.MethodFindNode, id+"6:target"+deep("l", "", 200)),
			rawQuery("n2", krpc.MethodPing, id+"1:x"+deep("d1:x", "i1e", 200)),
			[]byte("d1:a" + deep("l", "", 200) + "1:q4:ping1:t2:n31:y1:qe"),
			[]byte(deep("l", "", 200)),
			[]byte(deep("d1:a", "i1e", 200)),
			[]byte(strings.Repeat("l", 4000)), // never closed
			// One past the limit: message, a, and 7 lists.
			rawQuery("n4", krpc.MethodPing, id+"1:x"+deep("l", "", 7)),
		}
		d, replies := exchange(t, ctx, n, p, pkts...)
		wantDelta(t, d, uint64(len(pkts)), uint64(len(pkts)), 0, 0, 0, 0, 0)
		wantErrors(t, replies, nil)

		// At the limit (message, a, and 6 lists) a query is answered.
		d, replies = exchange(t, ctx, n, p, rawQuery("n5", krpc.MethodPing, id+"1:x"+deep("l", "", 6)))
		wantDelta(t, d, 1, 0, 1, 0, 0, 0, 0)
		if len(replies) != 1 || replies[0].T != "n5" || replies[0].Y != krpc.KindResponse {
			t.Fatalf("replies %+v, want the answer to n5", replies)
		}
	})

	t.Run("bad ID lengths", func(t *testing.T) {
		short, long := bs(strings.Repeat("s", 19)), bs(strings.Repeat("l", 21))
		pkts := map[string][]byte{
			"i1": rawQuery("i1", krpc.MethodPing, "2:id"+short),
			"i2": rawQuery("i2", krpc.MethodPing, "2:id"+long),
			"i3": rawQuery("i3", krpc.MethodPing, "2:id0:"),
			"i4": rawQuery("i4", krpc.MethodFindNode, id+"6:target"+short),
			"i5": rawQuery("i5", krpc.MethodFindNode, id+"6:target"+long),
			"i6": rawQuery("i6", krpc.MethodGetPeers, id+"9:info_hash"+short),
			"i7": rawQuery("i7", krpc.MethodGetPeers, id+"9:info_hash"+long),
			"i8": rawQuery("i8", krpc.MethodAnnouncePeer, id+"9:info_hash"+long+"4:porti1e5:token"+bs("12345678")),
			"i9": rawQuery("i9", krpc.MethodPing, "2:id"+bs(string(make([]byte, 20)))), // zero ID: "absent"
		}
		before := transportStats(t, ctx, n)
		want := map[string]int{}
		for tid, b := range pkts {
			p.send(b)
			want[tid] = krpc.ErrorCodeProtocol
		}
		// Read the 203s straight off the socket and parse them.
		got := map[string]bool{}
		deadline := time.Now().Add(5 * time.Second)
		for len(got) < len(pkts) {
			m, b, err := p.read(deadline)
			if err != nil {
				t.Fatalf("got 203 for %v only: %v", got, err)
			}
			if m.Y == krpc.KindQuery {
				continue
			}
			if m.Y != krpc.KindError || m.E.Code != krpc.ErrorCodeProtocol || pkts[m.T] == nil || got[m.T] {
				t.Fatalf("reply %q, want a 203 to one of the bad queries", b)
			}
			if m.V != Version {
				t.Errorf("203 without our version: %q", b)
			}
			got[m.T] = true
		}
		replies := p.sync()
		wantDelta(t, statsDelta(before, transportStats(t, ctx, n)), uint64(len(pkts)), uint64(len(pkts)), 0, uint64(len(pkts)), 0, 0, 0)
		wantErrors(t, replies, nil)
	})

	t.Run("unknown method", func(t *testing.T) {
		d, replies := exchange(t, ctx, n, p,
			rawQuery("u1", "vote", id),
			rawQuery("u2", "put", id+"1:v"+bs("x")),
			rawQuery("u3", strings.Repeat("m", 300), id),
		)
		wantDelta(t, d, 3, 0, 3, 0, 0, 0, 0)
		wantErrors(t, replies, map[string]int{"u1": 204, "u2": 204, "u3": 204})
	})

	t.Run("unmatched replies", func(t *testing.T) {
		pkts := [][]byte{
			[]byte("d1:rd" + id + "e1:t2:zz1:y1:re"),
			[]byte("d1:rd" + id + "e1:t1:z1:y1:re"),
			[]byte("d1:rd" + id + "e1:t3:zzz1:y1:re"),
			[]byte("d1:eli201e4:oopse1:t2:zy1:y1:ee"),
		}
		// The T of the node's ping to us, already answered: a duplicate.
		if len(p.queries) > 0 {
			pkts = append(pkts, []byte("d1:rd"+id+"e1:t"+bs(p.queries[0].T)+"1:y1:re"))
		}
		d, replies := exchange(t, ctx, n, p, pkts...)
		wantDelta(t, d, uint64(len(pkts)), 0, 0, 0, 0, uint64(len(pkts)), 0)
		wantErrors(t, replies, nil)
		if d.ErrorsIn != 0 {
			t.Errorf("ErrorsIn went up by %d", d.ErrorsIn)
		}
	})

	t.Run("oversized", func(t *testing.T) {
		max := krpc.DefaultMaxPacket
		d, replies := exchange(t, ctx, n, p,
			padPing("o1", p.id, max+1),
			padPing("o2", p.id, 3*max),
			[]byte(strings.Repeat("x", 60000)),
		)
		wantDelta(t, d, 3, 0, 0, 0, 3, 0, 0)
		wantErrors(t, replies, nil)

		// Exactly the limit is fine.
		d, replies = exchange(t, ctx, n, p, padPing("o3", p.id, max))
		wantDelta(t, d, 1, 0, 1, 0, 0, 0, 0)
		if len(replies) != 1 || replies[0].T != "o3" || replies[0].Y != krpc.KindResponse {
			t.Fatalf("replies %+v, want the answer to o3", replies)
		}
	})

	// Still alive, and still answering properly.
	p.sync()
	s, err := n.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.InfoHashes != 0 || s.Peers != 0 {
		t.Fatalf("bad input stored peers: %+v", s)
	}
}

func TestBadInputMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(35, 1))
	n := startNode(t, 35, 1, nil)
	p := newRawPeer(t, 35, 2, n.Addr(), routing.RandomID(r))
	p.sync()

	ih := routing.RandomID(r)
	templates := [][]byte{
		rawQuery("aa", krpc.MethodPing, rawID(p.id)),
		rawQuery("ab", krpc.MethodFindNode, rawID(p.id)+"6:target"+bs(string(ih[:]))),
		rawQuery("ac", krpc.MethodGetPeers, rawID(p.id)+"9:info_hash"+bs(string(ih[:]))),
		rawQuery("ad", krpc.MethodAnnouncePeer, rawID(p.id)+"9:info_hash"+bs(string(ih[:]))+"4:porti1e5:token"+bs("12345678")),
		[]byte("d1:rd" + rawID(p.id) + "5:nodes" + bs(strings.Repeat("n", 26*8)) + "e1:t2:zz1:y1:re"),
	}
	garbage := func() []byte {
		switch r.IntN(4) {
		case 0: // random bytes
			b := make([]byte, 1+r.IntN(600))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		case 1: // random bytes shaped like a dict
			b := make([]byte, 2+r.IntN(600))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			b[0], b[len(b)-1] = 'd', 'e'
			return b
		case 2: // a valid message with a few bytes changed
			b := slices.Clone(templates[r.IntN(len(templates))])
			for k := 1 + r.IntN(3); k > 0; k-- {
				b[r.IntN(len(b))] = byte(r.Uint32())
			}
			return b
		default: // huge declared lengths and deep nesting
			switch r.IntN(3) {
			case 0:
				return []byte(fmt.Sprintf("d1:ad2:id%d:xe1:q4:ping1:t2:aa1:y1:qe", 1+r.IntN(1<<30)))
			case 1:
				return []byte("d1:a" + strings.Repeat("l", 1+r.IntN(500)) + "e")
			default:
				return []byte(fmt.Sprintf("d1:ad2:idi%de", r.Uint64()))
			}
		}
	}

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := transportStats(t, ctx, n)
	h0 := heap()
	const total, batch = 20000, 50
	for sent := 0; sent < total; sent += batch {
		for i := 0; i < batch; i++ {
			p.send(garbage())
		}
		p.sync() // keeps the node's socket buffer from overflowing
	}
	h1 := heap()
	d := statsDelta(before, transportStats(t, ctx, n))
	t.Logf("heap %d -> %d KiB; %+v", h0>>10, h1>>10, d)
	if d.PacketsIn < total {
		t.Fatalf("the node read only %d of %d packets", d.PacketsIn, total)
	}
	if d.Malformed < total/2 {
		t.Fatalf("only %d of %d garbage packets counted malformed", d.Malformed, total)
	}
	if h1 > h0 && h1-h0 > 16<<20 {
		t.Fatalf("heap grew by %d MiB over %d garbage packets", (h1-h0)>>20, total)
	}
	p.sync()
	s, err := n.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Peers != 0 {
		t.Fatalf("garbage stored %d peers", s.Peers)
	}
}
