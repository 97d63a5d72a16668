package metrics

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"node/dht"
	"node/internal/adversary"
	tu "node/internal/testutil"
	"node/internal/testutil/dhtnet"
	"node/internal/testutil/promtest"
	"node/krpc"
	"node/routing"
)

// dhtMetricNames are every DHT metric this package exports.
var dhtMetricNames = []string{
	"node_dht_lookups_total", "node_dht_lookup_duration_seconds",
	"node_dht_queries_received_total", "node_dht_queries_sent_total",
	"node_dht_responses_received_total", "node_dht_errors_received_total", "node_dht_query_timeouts_total",
	"node_dht_packets_received_total", "node_dht_packets_sent_total", "node_dht_dropped_total",
	"node_dht_protocol_errors_sent_total", "node_dht_send_errors_total", "node_dht_foreign_nodes_dropped_total",
	"node_dht_blocked_sources", "node_dht_routing_table_nodes", "node_dht_routing_table_good_nodes",
	"node_dht_routing_table_buckets", "node_dht_peer_store_infohashes", "node_dht_peer_store_peers",
}

// A dual-stack node in a small loopback DHT, scraped over HTTP: every
// metric is there for both scraped, the counters move with the traffic
// that flows, and what a hostile source sends (a flood of queries, garbage,
// an oversized datagram) shows under its reason.
func TestDHTCollectorCountsTraffic(t *testing.T) {
	net6 := dhtnet.StartDual(t, 136, 6)
	d := NewDHT()
	pc, err := net.ListenPacket("udp4", "127.0.136.100:0")
	if err != nil {
		t.Fatal(err)
	}
	pc6, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := dht.New(dht.Config{
		Conn: pc, Conn6: pc6, Bootstrap: []string{net6[0].Addr().String(), net6[0].Addr6().String()},
		RatePerIP: 10, BurstPerIP: 10, BlockFor: time.Minute, OnLookup: d.ObserveLookup,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	d.Watch(n)
	srv, err := Listen("127.0.0.1:0", NewRegistry(d), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "http://" + srv.Addr().String() + Path

	before := promtest.Scrape(t, url, "")
	for _, name := range dhtMetricNames {
		if before[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if before[name] == nil {
			t.Errorf("%s missing: no Go or process collector", name)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	ih := routing.ID{0xab, 0xcd}
	if _, err := n.Announce(ctx, ih, 6881, nil); err != nil {
		t.Fatal(err)
	}
	// Queries to us, one per family, and an announce that reaches us.
	if _, err := net6[1].Ping(ctx, n.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := net6[1].Ping(ctx, n.Addr6()); err != nil {
		t.Fatal(err)
	}
	other := routing.ID{0x12}
	tu.WaitFor(t, 20*time.Second, "an announce stored by our node", func() bool {
		if _, err := net6[2].Announce(ctx, other, 7000, nil); err != nil {
			t.Fatal(err)
		}
		s, err := n.Stats(ctx)
		return err == nil && s.InfoHashes > 0
	})

	// One hostile source: a query of a method nobody knows, garbage, a
	// datagram over the size cap, then a flood of pings far past its rate.
	bad, err := adversary.NewNode("127.0.136.250")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	args := &krpc.Args{ID: routing.ID{0x66}}
	if err := bad.Query(n.Addr(), "q1", "vote", args); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bad.Recv(5 * time.Second); err != nil {
		t.Fatalf("no answer to the unknown method: %v", err)
	}
	_ = bad.SendRaw(n.Addr(), []byte("hello"))
	_ = bad.SendRaw(n.Addr(), make([]byte, krpc.DefaultMaxPacket+1))
	const flood = 300
	for i := range flood {
		_ = bad.Query(n.Addr(), string(rune('a'+i%26))+"x", krpc.MethodPing, args)
	}
	tu.WaitFor(t, 10*time.Second, "the flood counted as rate limited and its source blocked", func() bool {
		s, err := n.Stats(ctx)
		return err == nil && s.Transport.RateLimited > 0 && s.Transport.BlockedIPs > 0
	})

	after := promtest.Scrape(t, url, "")
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"node_dht_queries_sent_total", []string{"family=ipv4", "method=find_node"}, 1},
		{"node_dht_queries_sent_total", []string{"family=ipv6", "method=find_node"}, 1},
		{"node_dht_queries_sent_total", []string{"family=ipv4", "method=get_peers"}, 1},
		{"node_dht_queries_sent_total", []string{"family=ipv4", "method=announce_peer"}, 1},
		{"node_dht_queries_received_total", []string{"family=ipv4", "method=ping"}, 1},
		{"node_dht_queries_received_total", []string{"family=ipv6", "method=ping"}, 1},
		{"node_dht_queries_received_total", []string{"family=ipv4", "method=announce_peer"}, 1},
		{"node_dht_queries_received_total", []string{"family=ipv4", "method=other"}, 1},
		{"node_dht_responses_received_total", []string{"family=ipv4"}, 1},
		{"node_dht_responses_received_total", []string{"family=ipv6"}, 1},
		{"node_dht_packets_received_total", []string{"family=ipv4"}, 1},
		{"node_dht_packets_sent_total", []string{"family=ipv6"}, 1},
		{"node_dht_dropped_total", []string{"family=ipv4", "reason=rate_limited"}, 1},
		{"node_dht_dropped_total", []string{"family=ipv4", "reason=oversized"}, 1},
		{"node_dht_dropped_total", []string{"family=ipv4", "reason=blocked"}, 1},
		{"node_dht_blocked_sources", []string{"family=ipv4"}, 1},
		{"node_dht_routing_table_nodes", []string{"family=ipv4"}, 1},
		{"node_dht_routing_table_nodes", []string{"family=ipv6"}, 1},
		{"node_dht_routing_table_good_nodes", []string{"family=ipv4"}, 1},
		{"node_dht_routing_table_buckets", []string{"family=ipv6"}, 1},
		{"node_dht_peer_store_infohashes", nil, 1},
		{"node_dht_peer_store_peers", nil, 1},
		{"node_dht_lookups_total", []string{"method=find_node", "family=ipv4", "result=ok"}, 1},
		{"node_dht_lookups_total", []string{"method=get_peers", "family=ipv6", "result=ok"}, 1},
		{"node_dht_lookup_duration_seconds", []string{"method=find_node", "family=ipv6"}, 1},
		{"node_dht_lookup_duration_seconds", []string{"method=get_peers", "family=ipv4"}, 1},
	} {
		if got := after.Value(c.name, c.labels...); got < c.min {
			t.Errorf("%s%v = %v, want at least %v (before: %v)", c.name, c.labels, got, c.min, before.Value(c.name, c.labels...))
		}
	}
	// The garbage went in before the flood, so it was paid for and seen.
	if got := after.Value("node_dht_dropped_total", "family=ipv4", "reason=malformed"); got < 1 {
		t.Errorf("malformed drops %v, want at least 1", got)
	}
	// A counter never goes backwards between scrapes.
	for _, name := range dhtMetricNames {
		if !strings.HasSuffix(name, "_total") {
			continue
		}
		for _, m := range before[name].GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if b, a := m.GetCounter().GetValue(), after.Value(name, labels...); a < b {
				t.Errorf("%s%v went from %v to %v", name, labels, b, a)
			}
		}
	}

	problems, err := testutil.CollectAndLint(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// Each lookup's end lands in one series of each metric, picked by its
// method, family and how it ended; the duration lands in its bucket.
func TestObserveLookup(t *testing.T) {
	d := NewDHT()
	d.ObserveLookup(dht.LookupDone{Method: krpc.MethodGetPeers, IPv6: true, Stats: dht.LookupStats{Duration: 40 * time.Millisecond}})
	d.ObserveLookup(dht.LookupDone{Method: krpc.MethodFindNode, Err: dht.ErrNoResponse, Stats: dht.LookupStats{Duration: 2 * time.Second}})
	d.ObserveLookup(dht.LookupDone{Method: krpc.MethodFindNode, Err: context.DeadlineExceeded, Stats: dht.LookupStats{Duration: time.Minute}})
	d.ObserveLookup(dht.LookupDone{Method: krpc.MethodFindNode, Err: dht.ErrClosed})
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"get_peers", "ipv6", "ok"}, 1},
		{[]string{"find_node", "ipv4", "no_response"}, 1},
		{[]string{"find_node", "ipv4", "cancelled"}, 1},
		{[]string{"find_node", "ipv4", "error"}, 1},
		{[]string{"find_node", "ipv4", "ok"}, 0},
		{[]string{"get_peers", "ipv4", "ok"}, 0},
	} {
		if got := testutil.ToFloat64(d.lookups.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("lookups%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := testutil.CollectAndCount(d, "node_dht_lookups_total"); got != len(lookupMethods)*len(families)*len(lookupResults) {
		t.Errorf("%d lookup series, want every combination from the start", got)
	}
	// No node watched: the lookup series alone, lint-clean.
	if problems, err := testutil.CollectAndLint(d); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

type failingSource struct{}

func (failingSource) Stats(context.Context) (dht.Stats, error) { return dht.Stats{}, dht.ErrClosed }

// A node that cannot give its figures fails the scrape, so the scraper
// sees it down rather than flat.
func TestScrapeFailsWithTheNode(t *testing.T) {
	d := NewDHT()
	d.Watch(failingSource{})
	_, base := serveForTest(t, d)
	resp, err := http.Get(base + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("scrape of a closed node: %s, want 500", resp.Status)
	}
}

// deadlineSource reports the deadline it was given.
type deadlineSource struct{ deadline chan time.Time }

func (s deadlineSource) Stats(ctx context.Context) (dht.Stats, error) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Time{}
	}
	s.deadline <- d
	return dht.Stats{}, nil
}

// A scrape waits for the node's figures ScrapeTimeout at most.
func TestScrapeTimeout(t *testing.T) {
	d := NewDHT()
	src := deadlineSource{make(chan time.Time, 1)}
	d.Watch(src)
	testutil.CollectAndCount(d)
	end := time.Now()
	dl := <-src.deadline
	if dl.IsZero() || dl.Sub(end) > ScrapeTimeout {
		t.Errorf("the node was asked with deadline %v, %v after the scrape ended; want at most %v", dl, dl.Sub(end), ScrapeTimeout)
	}
}
