package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"node/dht"
	"node/krpc"
)

// ScrapeTimeout bounds the wait for a DHT node's figures during a scrape:
// they come from the node's loop, which a scrape must not queue behind
// for long.
const ScrapeTimeout = 5 * time.Second

// LookupBuckets are the lookup latency histogram's upper bounds, in
// seconds: a lookup on a warm table ends in tens of milliseconds on a
// fast network and in several seconds through slow or dead nodes; past
// 30 s something is wrong.
var LookupBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30}

// StatsSource is what the DHT collector reads at scrape time; a *dht.Node
// is one.
type StatsSource interface {
	Stats(ctx context.Context) (dht.Stats, error)
}

// Label values. The sets are closed, so no peer can grow a series count.
const (
	familyIPv4 = "ipv4"
	familyIPv6 = "ipv6"
)

var (
	families      = [...]string{familyIPv4, familyIPv6}
	lookupMethods = [...]string{krpc.MethodFindNode, krpc.MethodGetPeers}
	// lookupResults: ok (nodes answered), no_response (none did),
	// cancelled (the caller's context ended it), error (the node closed).
	lookupResults = [...]string{"ok", "no_response", "cancelled", "error"}
)

// DHT is a prometheus.Collector of a DHT node's figures. The transport's
// counters and the table's sizes are read from the node when scraped, so
// the node does no work for metrics between scrapes; lookups, which the
// node keeps no tally of, come in through ObserveLookup
// (dht.Config.OnLookup).
type DHT struct {
	mu  sync.Mutex
	src StatsSource

	lookups       *prometheus.CounterVec
	lookupSeconds *prometheus.HistogramVec
	// Curried once, so that a lookup's end costs no label lookup:
	// [method][family] and [method][family][result].
	durObs   [len(lookupMethods)][len(families)]prometheus.Observer
	countObs [len(lookupMethods)][len(families)][len(lookupResults)]prometheus.Counter

	queriesIn, queriesOut, responses, errorsIn, timeouts, packetsIn, packetsOut,
	dropped, answered203, sendErrors, foreign, blockedIPs, nodes, good, buckets,
	infoHashes, peers *prometheus.Desc
}

// NewDHT returns a collector with no node yet (see Watch); until it has
// one it exports the lookup series alone.
func NewDHT() *DHT {
	fam := []string{"family"}
	famMethod := []string{"family", "method"}
	d := &DHT{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "node_dht_lookups_total",
			Help: "Iterative lookups ended, by query method, socket family and result (ok, no_response, cancelled, error). A dual-stack node's lookup counts once per family.",
		}, []string{"method", "family", "result"}),
		lookupSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "node_dht_lookup_duration_seconds",
			Help:    "Time from a lookup's start to its end, by query method and socket family.",
			Buckets: LookupBuckets,
		}, []string{"method", "family"}),

		queriesIn:   desc("queries_received_total", "KRPC queries received and handed to the node, by method (ping, find_node, get_peers, announce_peer, sample_infohashes, other).", famMethod),
		queriesOut:  desc("queries_sent_total", "KRPC queries sent, by method.", famMethod),
		responses:   desc("responses_received_total", "Responses received to our queries.", fam),
		errorsIn:    desc("errors_received_total", "KRPC errors received in answer to our queries.", fam),
		timeouts:    desc("query_timeouts_total", "Queries of ours that got no answer in time.", fam),
		packetsIn:   desc("packets_received_total", "UDP datagrams received, dropped ones included.", fam),
		packetsOut:  desc("packets_sent_total", "UDP datagrams sent.", fam),
		dropped:     desc("dropped_total", "Datagrams dropped, by reason: on arrival oversized, malformed, unmatched (a reply to no query of ours), rate_limited (over the source's rate), blocked (the source is blocked); answers not sent for send_budget (the global send rate) or amplification (too big for the query).", []string{"family", "reason"}),
		answered203: desc("protocol_errors_sent_total", "Malformed queries answered with KRPC error 203.", fam),
		sendErrors:  desc("send_errors_total", "Datagrams the socket failed to send.", fam),
		foreign:     desc("foreign_nodes_dropped_total", "Contacts in answers dropped as of a family the socket does not carry or did not ask for (BEP 32).", fam),
		blockedIPs:  desc("blocked_sources", "Sources (IPv4 addresses, IPv6 /64s) blocked now for abuse.", fam),
		nodes:       desc("routing_table_nodes", "Nodes in the routing table.", fam),
		good:        desc("routing_table_good_nodes", "Nodes in the routing table heard from within 15 minutes (BEP 5 good).", fam),
		buckets:     desc("routing_table_buckets", "Buckets in the routing table.", fam),
		infoHashes:  desc("peer_store_infohashes", "Info-hashes the peer store holds announced peers for.", nil),
		peers:       desc("peer_store_peers", "Announced peers in the peer store, over all info-hashes.", nil),
	}
	for i, m := range lookupMethods {
		for j, f := range families {
			d.durObs[i][j] = d.lookupSeconds.WithLabelValues(m, f)
			for k, r := range lookupResults {
				d.countObs[i][j][k] = d.lookups.WithLabelValues(m, f, r)
			}
		}
	}
	return d
}

func desc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc("node_dht_"+name, help, labels, nil)
}

// Watch makes n the node whose figures are scraped.
func (d *DHT) Watch(n StatsSource) {
	d.mu.Lock()
	d.src = n
	d.mu.Unlock()
}

// ObserveLookup counts a lookup that ended and records its duration; it
// is a dht.Config.OnLookup.
func (d *DHT) ObserveLookup(l dht.LookupDone) {
	m := 0
	if l.Method == krpc.MethodGetPeers {
		m = 1
	}
	f := 0
	if l.IPv6 {
		f = 1
	}
	r := 0
	switch {
	case l.Err == nil:
	case errors.Is(l.Err, dht.ErrNoResponse):
		r = 1
	case errors.Is(l.Err, context.Canceled), errors.Is(l.Err, context.DeadlineExceeded):
		r = 2
	default:
		r = 3
	}
	d.countObs[m][f][r].Inc()
	d.durObs[m][f].Observe(l.Stats.Duration.Seconds())
}

// Describe implements prometheus.Collector.
func (d *DHT) Describe(ch chan<- *prometheus.Desc) {
	d.lookups.Describe(ch)
	d.lookupSeconds.Describe(ch)
	for _, x := range []*prometheus.Desc{d.queriesIn, d.queriesOut, d.responses, d.errorsIn, d.timeouts, d.packetsIn,
		d.packetsOut, d.dropped, d.answered203, d.sendErrors, d.foreign, d.blockedIPs, d.nodes, d.good, d.buckets,
		d.infoHashes, d.peers} {
		ch <- x
	}
}

// Collect implements prometheus.Collector. A node that does not give its
// figures within ScrapeTimeout fails the scrape: a stuck node should
// show as down, not as flat lines.
func (d *DHT) Collect(ch chan<- prometheus.Metric) {
	d.lookups.Collect(ch)
	d.lookupSeconds.Collect(ch)
	d.mu.Lock()
	src := d.src
	d.mu.Unlock()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	s, err := src.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d.nodes, err)
		return
	}
	fam := familyIPv4
	if s.V6Only {
		fam = familyIPv6
	}
	d.collectSocket(ch, &s, fam)
	if s.V6 != nil {
		d.collectSocket(ch, s.V6, familyIPv6)
	}
	// One peer store serves both sockets.
	ch <- prometheus.MustNewConstMetric(d.infoHashes, prometheus.GaugeValue, float64(s.InfoHashes))
	ch <- prometheus.MustNewConstMetric(d.peers, prometheus.GaugeValue, float64(s.Peers))
}

// collectSocket sends the figures of one socket's half of the node.
func (d *DHT) collectSocket(ch chan<- prometheus.Metric, s *dht.Stats, fam string) {
	counter := func(x *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(x, prometheus.CounterValue, float64(v), append([]string{fam}, labels...)...)
	}
	gauge := func(x *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(x, prometheus.GaugeValue, float64(v), fam)
	}
	t := &s.Transport
	for c := range krpc.MethodClass(krpc.NumMethodClasses) {
		counter(d.queriesIn, t.QueriesInByMethod[c], c.String())
		counter(d.queriesOut, t.QueriesOutByMethod[c], c.String())
	}
	counter(d.responses, t.ResponsesIn)
	counter(d.errorsIn, t.ErrorsIn)
	counter(d.timeouts, t.Timeouts)
	counter(d.packetsIn, t.PacketsIn)
	counter(d.packetsOut, t.PacketsOut)
	for _, r := range []struct {
		reason string
		v      uint64
	}{
		{"oversized", t.Oversized}, {"malformed", t.Malformed}, {"unmatched", t.Unmatched},
		{"rate_limited", t.RateLimited}, {"blocked", t.Blocked},
		{"send_budget", t.SendDropped}, {"amplification", t.Amplification},
	} {
		counter(d.dropped, r.v, r.reason)
	}
	counter(d.answered203, t.Answered203)
	counter(d.sendErrors, t.SendErrors)
	counter(d.foreign, s.ForeignNodes)
	gauge(d.blockedIPs, int(t.BlockedIPs))
	gauge(d.nodes, s.Nodes)
	gauge(d.good, s.Good)
	gauge(d.buckets, s.Buckets)
}
