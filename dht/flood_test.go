package dht

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// publicLimits is c with the abuse limits of a node on a public address,
// as the command line sets them.
func publicLimits(c Config) Config {
	c.RatePerIP, c.BurstPerIP, c.BlockFor = krpc.DefaultRatePerIP, krpc.DefaultBurstPerIP, krpc.DefaultBlockFor
	c.SendRate = krpc.DefaultSendRate
	c.MaxAmplification = krpc.DefaultMaxAmplification
	return c
}

// floodListen binds UDP on 127.b.c.d:0, closed when the test ends.
func floodListen(t *testing.T, b, c, d int) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, byte(b), byte(c), byte(d))})
	if err != nil {
		t.Fatalf("binding 127.%d.%d.%d: %v", b, c, d, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// floodEncode encodes a query.
func floodEncode(t *testing.T, tid, method string, a *krpc.Args) []byte {
	t.Helper()
	b := (&krpc.Msg{T: tid, Y: krpc.KindQuery, Q: method, A: a}).Append(nil)
	return b
}

// minFloodShare is the least share of its queries a well-behaved node
// sending at the per-IP rate gets answered during TestNodeFlood's flood.
const minFloodShare = 0.2

// TestNodeFlood is krpc's TestFlood aimed at a whole Node with the
// production limits: 1,000 source addresses send garbage and valid queries
// (ping, find_node, get_peers, announce_peer with bad tokens) as fast as
// they can, while a well-behaved node pings at the allowed per-source rate.
// The node has a routing table and stored peers, so its answers carry nodes
// and values and the handlers do real work. The flood must cost bounded
// memory, leave the table and peer store bounded and unchanged by the bad
// announces, and leave the well-behaved node served.
func TestNodeFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	const ratePerIP = krpc.DefaultRatePerIP
	sockets, malformedN, validN := 1000, 100_000, 100_000
	if testutil.Race {
		// The race detector slows the node's reader and loop several times
		// over, and the kernel drops most of the flood at the full socket
		// buffer. Fewer sources sending 400 datagrams each still get ~70
		// each read, well past their burst, so the rate limit is exercised
		// (with 200 each, or 500 sources, it hardly or never is).
		sockets, malformedN, validN = 250, 50_000, 50_000
	}
	testutil.RaiseNoFile(t, 4096)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	testStart := time.Now()

	// A small network of our nodes on 127.0.4.x, without limits.
	network := startOurs(t, 4, 8, nil, nil)
	boot := []string{network[0].Addr().String()}

	// The target: production limits on a public-sized socket buffer.
	srvConn := floodListen(t, 4, 0, 1)
	if err := srvConn.SetReadBuffer(4 << 20); err != nil {
		t.Logf("SetReadBuffer: %v", err)
	}
	node, err := New(publicLimits(Config{Conn: srvConn, Bootstrap: boot}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	srvAddr := node.Addr()

	bootstrapAll(t, ctx, network)
	if _, err := node.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap of the target: %v", err)
	}
	// Let the network learn of the target too, so announces reach it.
	for _, n := range network {
		_, _ = n.Bootstrap(ctx)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	ih := routing.RandomID(rng)
	for i, n := range network[:4] {
		if st, err := n.Announce(ctx, ih, 6881+i, nil); err != nil {
			t.Fatalf("announce from %v: %v (%+v)", n.Addr(), err, st)
		}
	}
	sBefore, err := node.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sBefore.Peers == 0 || sBefore.Nodes == 0 {
		t.Fatalf("setup: the target has %d nodes and %d peers stored, want some of each", sBefore.Nodes, sBefore.Peers)
	}
	setupTook := time.Since(testStart)

	conns, err := adversary.FloodSources(5, sockets)
	if err != nil {
		t.Fatalf("binding flood sockets: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	legitConn := floodListen(t, 6, 0, 1)
	legit, err := krpc.New(krpc.Config{Conn: legitConn, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer legit.Close()
	legitID := routing.RandomID(rng)

	malformed := adversary.Malformed(rng)
	// Valid queries, each source with its own ID, transaction ID, random
	// targets and a bad token.
	valid := make([][][]byte, sockets)
	for i := range valid {
		id := routing.RandomID(rng)
		target, randIH := routing.RandomID(rng), routing.RandomID(rng)
		tid := fmt.Sprintf("%c%c", byte(i>>8), byte(i))
		token := fmt.Sprintf("%08x", rng.Uint32())
		port := 6881
		valid[i] = [][]byte{
			floodEncode(t, tid, krpc.MethodPing, &krpc.Args{ID: id}),
			floodEncode(t, tid, krpc.MethodFindNode, &krpc.Args{ID: id, Target: &target}),
			floodEncode(t, tid, krpc.MethodGetPeers, &krpc.Args{ID: id, InfoHash: &ih}),
			floodEncode(t, tid, krpc.MethodGetPeers, &krpc.Args{ID: id, InfoHash: &randIH}),
			floodEncode(t, tid, krpc.MethodAnnouncePeer, &krpc.Args{ID: id, InfoHash: &ih, Token: token, Port: &port}),
			floodEncode(t, tid, krpc.MethodAnnouncePeer, &krpc.Args{ID: id, InfoHash: &randIH, Token: token, Port: &port}),
		}
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	trBefore := sBefore.Transport

	// The well-behaved node.
	pinger := adversary.StartPinger(ctx, legit, srvAddr, legitID, time.Second/ratePerIP)

	time.Sleep(500 * time.Millisecond)
	floodStart := time.Now()
	// One sender goroutine, so that all sources are active at once and
	// the node (its reader and its loop) keeps the other CPU.
	perSocket := (malformedN + validN) / sockets
	sent, sendErrs := adversary.UDPFlood(ctx, conns, srvAddr, perSocket, 1, func(i, j int) []byte {
		// Garbage and valid queries alternate.
		if j%2 == 0 {
			return malformed[(i+j/2)%len(malformed)]
		}
		return valid[i][(i+j/2)%len(valid[i])]
	})
	floodSent := time.Now()
	// The flood is over once the node has read everything that reached it:
	// its packet count moves only by the well-behaved node's 2 pings per
	// 100 ms and the odd packet of its own maintenance.
	var packetsIn uint64
	testutil.WaitQuiet(ctx, func() uint64 {
		if s, err := node.Stats(ctx); err == nil {
			packetsIn = s.Transport.PacketsIn
		}
		return packetsIn
	}, 100*time.Millisecond, 5)
	floodEnd := time.Now()
	// The well-behaved node's pings go on for 5 s after the flood, so that
	// the share outside it is judged on some 100 pings. (A fixed 10 s
	// from the start held a flood that lasts 1-2 s under -race in 8 s of
	// waiting.)
	time.Sleep(5 * time.Second)
	results := pinger.Stop()
	if ctx.Err() != nil {
		t.Fatalf("flood did not finish within the 60 s bound")
	}

	// The node survived: a fresh querier is still answered, with nodes and
	// with the stored peers.
	freshTr, err := krpc.New(krpc.Config{Conn: floodListen(t, 7, 0, 1), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer freshTr.Close()
	freshID := routing.RandomID(rng)
	if _, err := freshTr.Query(ctx, srvAddr, krpc.MethodPing, &krpc.Args{ID: freshID}); err != nil {
		t.Fatalf("after the flood, a fresh querier's ping: %v", err)
	}
	fn, err := freshTr.Query(ctx, srvAddr, krpc.MethodFindNode, &krpc.Args{ID: freshID, Target: &freshID})
	if err != nil {
		t.Fatalf("after the flood, a fresh querier's find_node: %v", err)
	}
	gp, err := freshTr.Query(ctx, srvAddr, krpc.MethodGetPeers, &krpc.Args{ID: freshID, InfoHash: &ih})
	if err != nil {
		t.Fatalf("after the flood, a fresh querier's get_peers: %v", err)
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)

	c := adversary.TallyPings(results, floodStart, floodEnd)
	total, answered, inFlood, answeredInFlood := c.Total, c.Answered, c.InWindow, c.AnsweredInWin
	sAfter, err := node.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := statsDeltaAll(trBefore, sAfter.Transport)
	ls := legit.Stats()
	t.Logf("sizes: %d sources, %d malformed + %d valid queries (race detector: %v); setup (9-node network, %d peers announced) took %v",
		sockets, malformedN, validN, testutil.Race, sBefore.Peers, setupTook.Round(time.Millisecond))
	t.Logf("flood: 1 sender goroutine, %d sent (%d send errors) in %v; node drained after %v",
		sent, sendErrs, floodSent.Sub(floodStart).Round(time.Millisecond), floodEnd.Sub(floodStart).Round(time.Millisecond))
	t.Logf("node transport (during the test): PacketsIn %d (kernel dropped ~%d), RateLimited %d, Blocked %d, BlockedIPs %d (now), Malformed %d, Answered203 %d, QueriesIn %d, PacketsOut %d, SendDropped %d, Amplification %d, QueriesOut %d, Timeouts %d",
		s.PacketsIn, int64(sent)+int64(total)-int64(s.PacketsIn), s.RateLimited, s.Blocked, s.BlockedIPs, s.Malformed, s.Answered203, s.QueriesIn, s.PacketsOut, s.SendDropped, s.Amplification, s.QueriesOut, s.Timeouts)
	t.Logf("well-behaved node (1 ping / %v over %v): answered %d/%d = %.1f%%; during the flood %d/%d = %.1f%%; its timeouts %d",
		time.Second/ratePerIP, time.Since(pinger.Start).Round(time.Millisecond), answered, total, 100*float64(answered)/float64(max(total, 1)),
		answeredInFlood, inFlood, 100*float64(answeredInFlood)/float64(max(inFlood, 1)), ls.Timeouts)
	t.Logf("table: %d nodes (%d good, %d buckets) before, %d (%d good, %d buckets) after; peer store: %d info-hashes / %d peers before, %d / %d after",
		sBefore.Nodes, sBefore.Good, sBefore.Buckets, sAfter.Nodes, sAfter.Good, sAfter.Buckets,
		sBefore.InfoHashes, sBefore.Peers, sAfter.InfoHashes, sAfter.Peers)
	t.Logf("fresh querier after the flood: ping answered, find_node gave %d nodes, get_peers gave %d values and %d nodes",
		len(fn.R.Nodes), len(gp.R.Values), len(gp.R.Nodes))
	t.Logf("heap: %.1f MiB before, %.1f MiB after (growth %+.2f MiB); goroutines %d; no panic (the node still answers)",
		float64(before.HeapAlloc)/(1<<20), float64(after.HeapAlloc)/(1<<20), float64(growth)/(1<<20), runtime.NumGoroutine())

	// While the flood lasts, the well-behaved node sends at the per-IP
	// rate like each flooder, and the send budget is shared among them
	// all: its fair share is about the budget over the senders (some 40%
	// here). How long the flood lasts depends on the machine, so one share
	// over a fixed window would measure the machine; the two halves are
	// judged apart: at least half the fair share during the flood (the
	// failure this guards against is starvation, well under it), nearly
	// everything outside it.
	//
	// What the node never reads is the kernel's doing, not the node's:
	// when the machine is busy the socket buffer overflows, and it drops
	// the well-behaved node's pings as often as the flood's. The share is
	// judged on what got through, so that only the node's own choices
	// (limits, queues) can fail it.
	read := min(1, float64(s.PacketsIn)/float64(max(int64(sent)+int64(total), 1)))
	// A flood of 1-2 s holds some 20 of its pings: too few to judge a
	// share by its point value (3 of 19 answered is 16%, and happens one
	// run in three at a true 20%). Fail only where so few answers would
	// come less than once in floodFalseAlarm runs at the wanted share;
	// starvation (none of 31 or more) still fails.
	want := minFloodShare * read
	if p := binomialAtMost(answeredInFlood, inFlood, want); inFlood > 0 && p < floodFalseAlarm {
		t.Errorf("well-behaved node answered %d of %d pings during the flood, which at %.1f%% (%.0f%% of the packets were read, times %.0f%%) happens with probability %.2g",
			answeredInFlood, inFlood, 100*want, 100*read, 100*minFloodShare, p)
	}
	outside, answeredOutside := total-inFlood, answered-answeredInFlood
	if share := float64(answeredOutside) / float64(max(outside, 1)); share < 0.95 {
		t.Errorf("well-behaved node answered %.1f%% outside the flood, want >= 95%%", 100*share)
	}
	if growth >= 64<<20 {
		t.Errorf("heap grew %d MiB, want < 64", growth>>20)
	}
	if s.RateLimited == 0 {
		t.Errorf("the flood was not rate limited: %+v", s)
	}
	if maxNodes := 160 * routing.K; sAfter.Nodes > maxNodes {
		t.Errorf("routing table holds %d nodes, want <= %d", sAfter.Nodes, maxNodes)
	}
	if sAfter.InfoHashes != sBefore.InfoHashes || sAfter.Peers != sBefore.Peers {
		t.Errorf("peer store went from %d info-hashes / %d peers to %d / %d: bad-token announces got in",
			sBefore.InfoHashes, sBefore.Peers, sAfter.InfoHashes, sAfter.Peers)
	}
	if len(gp.R.Values) == 0 {
		t.Errorf("after the flood, get_peers for the stored info-hash gave no values")
	}
	if s.BlockedIPs == 0 {
		t.Logf("no source reached the block threshold (%d datagrams read per source on average)", s.PacketsIn/uint64(sockets))
	}
}

// floodFalseAlarm is how unlikely the flood test's share of answers
// must be, at minFloodShare, for the test to fail.
const floodFalseAlarm = 0.001

// binomialAtMost is P(X <= k) for X ~ Binomial(n, p).
func binomialAtMost(k, n int, p float64) float64 {
	sum, term := 0.0, math.Pow(1-p, float64(n)) // P(X = 0)
	for i := 0; i <= k && i <= n; i++ {
		sum += term
		if p >= 1 {
			return 1
		}
		term *= float64(n-i) / float64(i+1) * p / (1 - p)
	}
	return sum
}

// statsDeltaAll is b - a for the cumulative counters; BlockedIPs, a gauge,
// is b's.
func statsDeltaAll(a, b krpc.Stats) krpc.Stats {
	d := statsDelta(a, b)
	d.RateLimited = b.RateLimited - a.RateLimited
	d.Blocked = b.Blocked - a.Blocked
	d.BlockedIPs = b.BlockedIPs
	d.SendDropped = b.SendDropped - a.SendDropped
	d.Amplification = b.Amplification - a.Amplification
	return d
}

func TestBinomialAtMost(t *testing.T) {
	for _, c := range []struct {
		k, n int
		p    float64
		want float64
	}{
		{0, 1, 0.5, 0.5},
		{1, 1, 0.5, 1},
		{0, 31, 0.2, math.Pow(0.8, 31)},
		{3, 19, 0.2, 0.4551},
		{2, 2, 0.3, 1},
	} {
		if got := binomialAtMost(c.k, c.n, c.p); math.Abs(got-c.want) > 1e-3 {
			t.Errorf("P(X <= %d), n %d, p %v: %v, want %v", c.k, c.n, c.p, got, c.want)
		}
	}
	if binomialAtMost(0, 31, 0.2) >= floodFalseAlarm {
		t.Errorf("none of 31 answered at 20%% would pass")
	}
}
