package dht

// Decode+handle+encode of one query, without sockets: each server reads
// raw query bytes from an in-memory conn through its real read path and
// writes its raw answer back to it. Ours and anacrolix/dht/v2 alike.
//
//	go test -run '^$' -bench ServeQuery -benchtime 2s ./dht
//
// With NODE_BENCH_JSON=path the figures are also written there, in the
// shared bench schema (internal/bench/driver merges them).

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"
	akrpc "github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"

	"node/internal/bench/benchfmt"
	"node/internal/dhttest"
	"node/krpc"
	"node/routing"
)

const (
	serveQuerySources = 64   // distinct querier addresses, cycled
	serveQueryTable   = 2000 // random contacts offered to each table
	serveQueryPeers   = 4    // peers stored for the "with values" info-hash
)

// memConn is a PacketConn that serves the same queries over and over, as
// many as the benchmark grants, and counts the answers written to it.
// Only the server's single reading goroutine reads.
type memConn struct {
	local    netip.AddrPort
	reqs     [][]byte
	froms    []netip.AddrPort
	udpFroms []*net.UDPAddr

	next, left int      // reader's
	more       chan int // grants
	closed     chan struct{}
	closeOnce  sync.Once

	target  atomic.Int64
	replies atomic.Int64
	done    chan struct{}
}

func newMemConn(reqs [][]byte, froms []netip.AddrPort) *memConn {
	c := &memConn{
		local: netip.MustParseAddrPort("127.0.100.1:6881"),
		reqs:  reqs, froms: froms,
		more: make(chan int, 1), closed: make(chan struct{}), done: make(chan struct{}, 1),
	}
	for _, f := range froms {
		c.udpFroms = append(c.udpFroms, net.UDPAddrFromAddrPort(f))
	}
	return c
}

// run grants n queries and waits for their n answers.
func (c *memConn) run(tb testing.TB, n int) {
	c.replies.Store(0)
	c.target.Store(int64(n))
	c.more <- n
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		tb.Fatalf("%d of %d queries answered after a minute", c.replies.Load(), n)
	}
}

func (c *memConn) take(b []byte) (int, int, error) {
	for c.left == 0 {
		select {
		case n := <-c.more:
			c.left = n
		case <-c.closed:
			return 0, 0, net.ErrClosed
		}
	}
	c.left--
	i := c.next
	c.next = (i + 1) % len(c.reqs)
	return copy(b, c.reqs[i]), i, nil
}

func (c *memConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, i, err := c.take(b)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return n, c.froms[i], nil
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, i, err := c.take(b)
	if err != nil {
		return 0, nil, err
	}
	return n, c.udpFroms[i], nil
}

// written counts answers; queries the server sends (pings to verify the
// queriers) go nowhere.
func (c *memConn) written(b []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	if bytes.HasSuffix(b, []byte("1:y1:re")) && c.replies.Add(1) == c.target.Load() {
		c.done <- struct{}{}
	}
	return len(b), nil
}

func (c *memConn) WriteToAddrPort(b []byte, _ netip.AddrPort) (int, error) { return c.written(b) }
func (c *memConn) WriteTo(b []byte, _ net.Addr) (int, error)               { return c.written(b) }
func (c *memConn) LocalAddr() net.Addr                                     { return net.UDPAddrFromAddrPort(c.local) }
func (c *memConn) SetDeadline(time.Time) error                             { return nil }
func (c *memConn) SetReadDeadline(time.Time) error                         { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error                        { return nil }
func (c *memConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// serveQueryCase is one kind of query: its method and info-hash choice.
type serveQueryCase struct {
	name, method string
	values       bool // ask for the info-hash that has stored peers
}

var serveQueryCases = []serveQueryCase{
	{"ping", krpc.MethodPing, false},
	{"get_peers", krpc.MethodGetPeers, false},
	{"get_peers with values", krpc.MethodGetPeers, true},
}

// serveQueryFixture is the shared input: table contacts, info-hashes,
// queriers.
type serveQueryFixture struct {
	contacts   []routing.Contact
	ih, ihVals routing.ID
	peers      []netip.AddrPort
	froms      []netip.AddrPort
	ids        []routing.ID
}

func newServeQueryFixture() *serveQueryFixture {
	r := rand.New(rand.NewPCG(100, 1))
	f := &serveQueryFixture{ih: routing.RandomID(r), ihVals: routing.RandomID(r)}
	for i := range serveQueryTable {
		f.contacts = append(f.contacts, routing.Contact{
			ID:   routing.RandomID(r),
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}), 6881),
		})
	}
	for i := range serveQueryPeers {
		f.peers = append(f.peers, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 101, 0, byte(i)}), 6881))
	}
	for i := range serveQuerySources {
		f.froms = append(f.froms, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 102, 0, byte(i)}), 6881))
		f.ids = append(f.ids, routing.RandomID(r))
	}
	return f
}

// queries encodes one query per source.
func (f *serveQueryFixture) queries(tb testing.TB, c serveQueryCase) [][]byte {
	var out [][]byte
	for i := range f.froms {
		a := &krpc.Args{ID: f.ids[i]}
		if c.method == krpc.MethodGetPeers {
			ih := f.ih
			if c.values {
				ih = f.ihVals
			}
			a.InfoHash = &ih
		}
		b := (&krpc.Msg{T: string([]byte{'q', byte(i)}), Y: krpc.KindQuery, Q: c.method, A: a}).Append(nil)
		out = append(out, b)
	}
	return out
}

func BenchmarkServeQuery(b *testing.B) {
	f := newServeQueryFixture()
	for _, c := range serveQueryCases {
		b.Run(c.name+"/ours", func(b *testing.B) { benchServeQuery(b, f, c, "ours") })
		b.Run(c.name+"/anacrolix", func(b *testing.B) { benchServeQuery(b, f, c, "anacrolix") })
	}
}

func benchServeQuery(b *testing.B, f *serveQueryFixture, c serveQueryCase, impl string) {
	mc := newMemConn(f.queries(b, c), f.froms)
	switch impl {
	case "ours":
		n, err := New(Config{Conn: mc, QueryTimeout: 300 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, ct := range f.contacts {
			if err := n.post(ctx, respondedEvent{c: ct}); err != nil {
				b.Fatal(err)
			}
		}
		es, err := n.Entries(ctx) // also publishes the view answers use
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("ours: %d of %d contacts in the table", len(es), len(f.contacts))
		for _, p := range f.peers {
			n.store.add(f.ihVals, p, time.Now())
		}
	case "anacrolix":
		cfg := adht.NewDefaultServerConfig()
		cfg.Conn = mc
		dhttest.Configure(cfg, func() []netip.AddrPort { return nil })
		s, err := adht.NewServer(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for _, ct := range f.contacts {
			a := ct.Addr.Addr().As4()
			_ = s.AddNode(akrpc.NodeInfo{ID: akrpc.ID(ct.ID), Addr: akrpc.NodeAddr{IP: a[:], Port: int(ct.Addr.Port())}})
		}
		b.Logf("anacrolix: %d of %d contacts in the table", s.Stats().Nodes, len(f.contacts))
		for _, p := range f.peers {
			a := p.Addr().As4()
			cfg.PeerStore.AddPeer(peer_store.InfoHash(f.ihVals), akrpc.NodeAddr{IP: a[:], Port: int(p.Port())})
		}
	}
	// Warm up: every querier seen once, buffers grown, pools filled.
	mc.run(b, 4*len(f.froms))

	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	mc.run(b, b.N)
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	nsOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	allocs := float64(m1.Mallocs-m0.Mallocs) / float64(b.N)
	b.ReportMetric(allocs, "allocs/query")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N), "B/query")
	if b.N >= 1000 { // the final round, not the framework's probes
		recordServeQuery(b, c.name, impl, nsOp, allocs)
	}
}

const serveQuerySection = "KRPC decode+handle+encode, one query"

var benchJSONMu sync.Mutex

// recordServeQuery merges one figure into the NODE_BENCH_JSON file, if
// set. Later runs of the same benchmark overwrite earlier ones.
func recordServeQuery(tb testing.TB, kind, impl string, nsOp, allocs float64) {
	path := os.Getenv("NODE_BENCH_JSON")
	if path == "" {
		return
	}
	benchJSONMu.Lock()
	defer benchJSONMu.Unlock()
	doc, err := benchfmt.Read(path)
	if err != nil {
		tb.Fatal(err)
	}
	var sec *benchfmt.Section
	for i := range doc.Sections {
		if doc.Sections[i].Name == serveQuerySection {
			sec = &doc.Sections[i]
		}
	}
	if sec == nil {
		doc.Sections = append(doc.Sections, benchfmt.Section{
			Name: serveQuerySection,
			Notes: []string{
				"raw query bytes in, raw answer bytes out, through each server's real read path on an in-memory conn (no sockets)",
				"table filled from 2,000 random contacts; 64 querier addresses cycled; get_peers answers carry 8 nodes and a token",
				"with values: 4 stored peers; ours answers values and nodes, anacrolix values only",
				"go test -run '^$' -bench ServeQuery ./dht",
			},
		})
		sec = &doc.Sections[len(doc.Sections)-1]
	}
	set := func(metric, unit string, v float64, target string) {
		var row *benchfmt.Row
		for i := range sec.Rows {
			if sec.Rows[i].Metric == metric {
				row = &sec.Rows[i]
			}
		}
		if row == nil {
			sec.Rows = append(sec.Rows, benchfmt.Row{Metric: metric, Unit: unit, Better: "lower", Target: target})
			row = &sec.Rows[len(sec.Rows)-1]
		}
		if impl == "ours" {
			row.Ours = v
			if target != "" {
				met := v == 0
				row.Met = &met
			}
		} else {
			row.Anacrolix = &v
		}
	}
	set(kind+": time per query", "ns", nsOp, "")
	// Rounded: a few allocations of the node's other goroutines (its
	// maintenance tick) over millions of queries are not per query.
	set(kind+": allocations per query", "allocs", math.Round(allocs*100)/100, "0 (aim)")
	if err := benchfmt.Write(path, doc); err != nil {
		tb.Fatal(err)
	}
}
