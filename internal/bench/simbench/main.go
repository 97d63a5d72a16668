// Command simbench measures DHT lookups at scale on a simulated network
// (internal/simnet, internal/simnet/simdht), ours against anacrolix/dht/v2
// in the same model, in this one process:
//
//	go run ./internal/bench/simbench -json sim.json -svg sim.svg
//	go run ./internal/bench/simbench -quick   # the subset make bench runs
//	go run ./internal/bench/simbench -sizes 100000 -anacrolix '' -attack 100000 -attack-anacrolix=false
//	go run ./internal/bench/simbench -sizes '' -anacrolix '' -attack 10000 -attack-anacrolix=false -ring
//	go run ./internal/bench/simbench -sizes '' -anacrolix '' -attack 10000 -attack-anacrolix=false -ring -bep42 -liar-subnets 8
//
// The model (simnet.Internet): endpoints spread over a sphere, a one-way
// delay of distance at the speed of light in fibre plus each end's
// log-normal access delay, a median round trip of about 100 ms; 1% of
// packets lost; 30% of the addresses never answer; churn replaces nodes
// whose sessions end (simdht.DefaultChurn: Pareto sessions of median one
// simulated hour, played 10 times faster than real time). Every node
// starts warm, its table drawn from the global view (simdht.Build).
// The -attack sizes run again with 10% closer liars (adversary.CloserLiar:
// each answer names fabricated nodes nearer the target, at the liars' and
// silent addresses, and fabricated peers), or with -ring a ring of liars
// that agree on the IDs they give one another (adversary.LiarRing).
// With -bep42 the addresses are public, each honest node in a /24 of its
// own with a BEP 42 ID for it, and -liar-subnets packs the liars into a
// few /24s (their own IDs valid too, the ones they make up not).
//
// Per network size: info-hashes each announced by 8 nodes, then lookups
// from random answering nodes that announced nothing. Reported: the time
// to the first announced peer and to the 8th (median, 90th and 99th
// percentile; a lookup that never got there counts as slower than any),
// queries per lookup (the looker's, on the wire), the share of lookups
// that found all 8, each node's load (queries delivered to it per minute
// of the run: median, 99th percentile, max), the steady query rate of
// each node that ran no announce or lookup (queries it sent per minute of
// the run: its pings, refreshes and node-cache fills; median, 99th
// percentile, max), and memory per node (heap and goroutine stacks after
// setup, over the answering nodes).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"node/internal/bench/benchfmt"
	"node/internal/bench/benchkit"
	"node/internal/simnet"
	"node/internal/simnet/simdht"
)

// deadline bounds the whole run, make sim's 10 minutes less the build.
const deadline = 9*time.Minute + 15*time.Second

type options struct {
	sizes, theirSizes []int
	lookups           int
	infoHashes        int
	concurrency       int
	timeout           time.Duration
	silent            float64
	liars             float64
	attackSizes       []int
	attackTheirs      bool
	ring              bool
	bep42             bool
	compliantRing     bool
	liarSubnets       int
	loss              float64
	churn             bool
	seed              uint64
	jsonOut, svgOut   string
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "simbench:", err)
		os.Exit(1)
	}
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 100 || n > 1<<24-2 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("simbench", flag.ContinueOnError)
	sizes := fs.String("sizes", "1000,10000,100000", "network sizes of our nodes (addresses, silent ones included)")
	theirs := fs.String("anacrolix", "10000", "network sizes of anacrolix servers")
	quick := fs.Bool("quick", false, "the make bench subset: 1,000 nodes of each, fewer lookups")
	fs.IntVar(&o.lookups, "lookups", 200, "lookups per size")
	fs.IntVar(&o.infoHashes, "infohashes", 16, "info-hashes, each announced by 8 nodes")
	fs.IntVar(&o.concurrency, "concurrency", 16, "lookups (and announces) at once")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound of each lookup and announce")
	fs.Float64Var(&o.silent, "silent", 0.3, "share of addresses that never answer")
	fs.Float64Var(&o.liars, "liars", 0.1, "share of closer liars in the -attack runs")
	attack := fs.String("attack", "1000", "network sizes run again, ours and anacrolix's, with -liars closer liars")
	fs.BoolVar(&o.attackTheirs, "attack-anacrolix", true, "run anacrolix's network too in the -attack runs (false: ours alone, for sizes anacrolix does not fit)")
	fs.BoolVar(&o.ring, "ring", false, "the liars of the -attack runs are a ring that agrees on the IDs it gives (adversary.LiarRing)")
	fs.BoolVar(&o.bep42, "bep42", false, "public addresses, each honest node in a /24 of its own with an ID BEP 42 makes valid for it (default: 10.0.0.0/8, which BEP 42 exempts)")
	fs.BoolVar(&o.compliantRing, "compliant-ring", false, "with -ring, the ring names its members under the BEP 42-valid IDs nearest the target (adversary.NewCompliantLiarRing)")
	fs.IntVar(&o.liarSubnets, "liar-subnets", 0, "with -bep42, the liars share this many /24s (0: a /24 each)")
	fs.Float64Var(&o.loss, "loss", 0.01, "share of packets lost")
	fs.BoolVar(&o.churn, "churn", true, "nodes leave and join (simdht.DefaultChurn)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the network and the workload")
	fs.StringVar(&o.jsonOut, "json", "", "write the figures to this `file` (shared bench schema)")
	fs.StringVar(&o.svgOut, "svg", "", "draw the time to the first peer per size to this `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if *quick {
		*sizes, *theirs, *attack = "1000", "1000", ""
		o.lookups, o.infoHashes = 60, 8
	}
	if o.sizes, err = parseSizes(*sizes); err != nil {
		return err
	}
	if o.theirSizes, err = parseSizes(*theirs); err != nil {
		return err
	}
	if o.attackSizes, err = parseSizes(*attack); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	model := simnet.Internet(o.seed)
	model.Loss = o.loss
	rtt := simnet.MedianRTT(model, 100_000)
	fmt.Printf("model: median RTT %v, loss %.1f%%, silent %.0f%%, churn %v, liar ring %v (compliant %v), BEP 42 addresses %v (liar /24s %d); load %s\n",
		rtt.Round(time.Millisecond), 100*o.loss, 100*o.silent, o.churn, o.ring, o.compliantRing, o.bep42, o.liarSubnets, loadavg())

	type job struct {
		impl  simdht.Impl
		n     int
		liars float64
	}
	var jobs []job
	for _, n := range o.sizes {
		jobs = append(jobs, job{simdht.Ours, n, 0})
	}
	for _, n := range o.theirSizes {
		jobs = append(jobs, job{simdht.Anacrolix, n, 0})
	}
	for _, n := range o.attackSizes {
		jobs = append(jobs, job{simdht.Ours, n, o.liars})
		if o.attackTheirs {
			jobs = append(jobs, job{simdht.Anacrolix, n, o.liars})
		}
	}
	// Ours first, smallest first: the largest network of ours is the
	// point; anacrolix's, whose setup pings every table, come after.
	slices.SortStableFunc(jobs, func(a, b job) int {
		if (a.liars > 0) != (b.liars > 0) {
			if a.liars == 0 {
				return -1
			}
			return 1
		}
		if a.impl != b.impl {
			if a.impl == simdht.Ours {
				return -1
			}
			return 1
		}
		return a.n - b.n
	})
	var runs []*summary
	for _, j := range jobs {
		if ctx.Err() != nil {
			fmt.Printf("%s at %d: skipped, out of time\n", j.impl, j.n)
			continue
		}
		s, err := runOne(ctx, o, model, j.impl, j.n, j.liars)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				fmt.Printf("%s at %d: out of time\n", j.impl, j.n)
				continue
			}
			return fmt.Errorf("%s at %d: %w", j.impl, j.n, err)
		}
		runs = append(runs, s)
		fmt.Printf("%s at %d: done in %v (setup %v); load %s\n", j.impl, j.n, s.Wall.Round(time.Second), s.Setup.Round(time.Second), loadavg())
	}
	printTable(runs, rtt)
	secs := sections(runs, rtt, o)
	for _, sec := range secs {
		benchkit.PrintSection(os.Stdout, sec, "ours", "anacrolix", 12)
	}
	if o.jsonOut != "" {
		if err := benchfmt.Write(o.jsonOut, benchfmt.File{Sections: secs}); err != nil {
			return err
		}
	}
	if o.svgOut != "" {
		if err := os.WriteFile(o.svgOut, []byte(drawSVG(runs, rtt)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// summary is one network's figures.
type summary struct {
	Impl  simdht.Impl
	Nodes int
	Liars float64 // share of closer liars
	Setup time.Duration
	Wall  time.Duration

	FirstMs  []float64 // per lookup; +Inf when it found none
	AllMs    []float64 // to the 8th; +Inf when it did not find all
	Queries  []float64
	All8     float64 // share of lookups
	Errors   int
	AnnFails int

	LoadMedian, LoadP99, LoadMax float64 // queries delivered per node per minute
	// queries sent per minute by each node that ran no announce or
	// lookup: its steady background traffic
	OutMedian, OutP99, OutMax float64
	BytesPerNode              float64
	Left, Joined              int64
	Net                       simnet.Stats
}

// label is the implementation, marked when liars were about.
func (s *summary) label() string {
	if s.Liars > 0 {
		return string(s.Impl) + "+liars"
	}
	return string(s.Impl)
}

func runOne(ctx context.Context, o options, model simnet.Config, impl simdht.Impl, n int, liars float64) (*summary, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	opt := simdht.Options{Impl: impl, Nodes: n, Seed: o.seed, Model: model, Silent: o.silent, Liars: liars, Ring: o.ring, BEP42: o.bep42, LiarSubnets: o.liarSubnets, CompliantRing: o.compliantRing}
	if o.churn {
		opt.Churn = simdht.DefaultChurn
	}
	w, err := simdht.Build(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	s := &summary{Impl: impl, Nodes: n, Liars: liars, Setup: time.Since(start)}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	live := len(w.Responsive())
	s.BytesPerNode = float64(int64(m1.HeapInuse+m1.StackInuse)-int64(m0.HeapInuse+m0.StackInuse)) / float64(live)

	res := simdht.Measure(ctx, w, simdht.Workload{
		InfoHashes: o.infoHashes, Announcers: 8, Lookups: o.lookups,
		Concurrency: o.concurrency, Timeout: o.timeout, Seed: o.seed + uint64(n),
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all := 0
	for _, l := range res.Lookups {
		first, last := math.Inf(1), math.Inf(1)
		if l.Found > 0 {
			first = ms(l.First)
		}
		if l.Found == 8 {
			last = ms(l.All)
			all++
		}
		s.FirstMs = append(s.FirstMs, first)
		s.AllMs = append(s.AllMs, last)
		s.Queries = append(s.Queries, float64(l.Queries))
		if l.Err != nil {
			s.Errors++
		}
	}
	s.All8 = float64(all) / float64(max(1, len(res.Lookups)))
	s.AnnFails = res.AnnounceFails
	perMin := func(q uint32) float64 { return float64(q) / res.Window.Minutes() }
	if k := len(res.QueriesIn); k > 0 {
		s.LoadMedian = perMin(res.QueriesIn[k/2])
		s.LoadP99 = perMin(res.QueriesIn[min(k-1, k*99/100)])
		s.LoadMax = perMin(res.QueriesIn[k-1])
	}
	if k := len(res.QueriesOut); k > 0 {
		s.OutMedian = perMin(res.QueriesOut[k/2])
		s.OutP99 = perMin(res.QueriesOut[min(k-1, k*99/100)])
		s.OutMax = perMin(res.QueriesOut[k-1])
	}
	s.Left, s.Joined = w.Churned()
	s.Net = w.Net.Stats()
	s.Wall = time.Since(start)
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the p-th percentile of xs (+Inf entries count as slowest), or
// +Inf when that many did not get there.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.Inf(1)
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func fmtMs(x float64) string {
	if math.IsInf(x, 1) {
		return "none"
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

func printTable(runs []*summary, rtt time.Duration) {
	fmt.Printf("\nDHT lookups on the simulated network (median RTT %v)\n", rtt.Round(time.Millisecond))
	fmt.Printf("  %-15s %7s %7s %7s %7s %7s %7s %7s %7s %6s %7s %7s %7s %6s %6s %6s %8s %9s\n",
		"impl", "nodes", "1st p50", "1st p90", "1st p99", "8th p50", "8th p90", "8th p99", "q/look", "all 8", "load50", "load99", "loadmax", "out50", "out99", "outmax", "KiB/node", "left/join")
	for _, s := range runs {
		fmt.Printf("  %-15s %7d %7s %7s %7s %7s %7s %7s %7.1f %5.1f%% %7.1f %7.1f %7.1f %6.1f %6.1f %6.1f %8.1f %4d/%-4d\n",
			s.label(), s.Nodes,
			fmtMs(pct(s.FirstMs, 50)), fmtMs(pct(s.FirstMs, 90)), fmtMs(pct(s.FirstMs, 99)),
			fmtMs(pct(s.AllMs, 50)), fmtMs(pct(s.AllMs, 90)), fmtMs(pct(s.AllMs, 99)),
			benchkit.Median(s.Queries, 0), 100*s.All8, s.LoadMedian, s.LoadP99, s.LoadMax,
			s.OutMedian, s.OutP99, s.OutMax,
			s.BytesPerNode/1024, s.Left, s.Joined)
	}
	fmt.Println("  times in ms; load: queries delivered per node per minute of the run (the workload's included);")
	fmt.Println("  out: queries sent per node per minute by the nodes that ran no announce or lookup (the steady background rate);")
	fmt.Println("  KiB/node: heap and stacks after setup per answering node")
}

// sections are the JSON figures: one section per size, ours against
// anacrolix where both ran; the targets on the largest size of
// ours and on the largest both ran.
func sections(runs []*summary, rtt time.Duration, o options) []benchfmt.Section {
	type key struct {
		n      int
		attack bool
	}
	bySize := map[key][2]*summary{}
	var sizes []key
	for _, s := range runs {
		k := key{s.Nodes, s.Liars > 0}
		p := bySize[k]
		if p[0] == nil && p[1] == nil {
			sizes = append(sizes, k)
		}
		if s.Impl == simdht.Ours {
			p[0] = s
		} else {
			p[1] = s
		}
		bySize[k] = p
	}
	slices.SortFunc(sizes, func(a, b key) int {
		if a.attack != b.attack {
			if a.attack {
				return 1
			}
			return -1
		}
		return a.n - b.n
	})
	largestOurs, largestBoth := 0, 0
	for _, k := range sizes {
		if k.attack {
			continue
		}
		n := k.n
		p := bySize[k]
		if p[0] != nil {
			largestOurs = n
		}
		if p[0] != nil && p[1] != nil {
			largestBoth = n
		}
	}
	num := func(x float64) float64 {
		if math.IsInf(x, 1) {
			return -1 // none: the schema has no infinity
		}
		return x
	}
	var out []benchfmt.Section
	for _, k := range sizes {
		n, p := k.n, bySize[k]
		type metric struct {
			name, unit, better string
			f                  func(*summary) float64
		}
		metrics := []metric{
			{"time to first peer, median", "ms", "lower", func(s *summary) float64 { return num(pct(s.FirstMs, 50)) }},
			{"time to first peer, p90", "ms", "lower", func(s *summary) float64 { return num(pct(s.FirstMs, 90)) }},
			{"time to first peer, p99", "ms", "lower", func(s *summary) float64 { return num(pct(s.FirstMs, 99)) }},
			{"time to 8th peer, median", "ms", "lower", func(s *summary) float64 { return num(pct(s.AllMs, 50)) }},
			{"time to 8th peer, p90", "ms", "lower", func(s *summary) float64 { return num(pct(s.AllMs, 90)) }},
			{"time to 8th peer, p99", "ms", "lower", func(s *summary) float64 { return num(pct(s.AllMs, 99)) }},
			{"queries per lookup, median", "queries", "lower", func(s *summary) float64 { return benchkit.Median(s.Queries, 0) }},
			{"lookups finding all 8", "%", "higher", func(s *summary) float64 { return 100 * s.All8 }},
			{"queries received per node, p99", "per min", "lower", func(s *summary) float64 { return s.LoadP99 }},
			{"queries received per node, max", "per min", "lower", func(s *summary) float64 { return s.LoadMax }},
			{"background queries sent per idle node, median", "per min", "lower", func(s *summary) float64 { return s.OutMedian }},
			{"background queries sent per idle node, p99", "per min", "lower", func(s *summary) float64 { return s.OutP99 }},
			{"memory per node", "KiB", "lower", func(s *summary) float64 { return s.BytesPerNode / 1024 }},
		}
		sec := benchfmt.Section{Name: fmt.Sprintf("DHT simulation, %d nodes", n)}
		if k.attack {
			kind := "closer liars"
			switch {
			case o.ring && o.compliantRing:
				kind = "liars in a ring with BEP 42-valid IDs"
			case o.ring:
				kind = "liars in a ring"
			}
			if o.bep42 && o.liarSubnets > 0 {
				kind += fmt.Sprintf(" in %d /24s", o.liarSubnets)
			}
			sec.Name = fmt.Sprintf("DHT simulation, %d nodes, %.0f%% %s", n, 100*o.liars, kind)
		}
		for _, m := range metrics {
			r := benchfmt.Row{Metric: m.name, Unit: m.unit, Better: m.better}
			if p[0] != nil {
				r.Ours = m.f(p[0])
			} else {
				r.Ours = -1
			}
			if p[1] != nil {
				v := m.f(p[1])
				r.Anacrolix = &v
			}
			sec.Rows = append(sec.Rows, r)
		}
		target := func(metric, text string, met bool) {
			for i := range sec.Rows {
				if sec.Rows[i].Metric == metric {
					sec.Rows[i].Target = text
					sec.Rows[i].Met = &met
				}
			}
		}
		if s := p[0]; s != nil && k.attack {
			target("lookups finding all 8", ">= 90", s.All8 >= 0.9)
			if calm := bySize[key{n, false}][0]; calm != nil {
				target("time to first peer, median", fmt.Sprintf("<= %.0f", 2*pct(calm.FirstMs, 50)), pct(s.FirstMs, 50) <= 2*pct(calm.FirstMs, 50))
			}
		}
		if s := p[0]; s != nil && n == largestOurs && !k.attack {
			med := pct(s.FirstMs, 50)
			target("time to first peer, median", fmt.Sprintf("<= %.0f", 3*ms(rtt)), med <= 3*ms(rtt))
			target("time to first peer, p99", "< 1000", pct(s.FirstMs, 99) < 1000)
			target("lookups finding all 8", ">= 95", s.All8 >= 0.95)
		}
		if n == largestBoth && p[0] != nil && p[1] != nil && !k.attack {
			ours, theirs := pct(p[0].FirstMs, 50), pct(p[1].FirstMs, 50)
			for i := range sec.Rows {
				if sec.Rows[i].Metric == "time to first peer, median" && sec.Rows[i].Target == "" {
					met := ours <= 0.7*theirs
					sec.Rows[i].Target, sec.Rows[i].Met = "<= 0.7x", &met
				}
			}
		}
		for _, s := range p {
			if s == nil {
				continue
			}
			sec.Notes = append(sec.Notes, fmt.Sprintf("%s: setup %v, run %v; %d lookups (%d errors), %d announce failures; churn %d left, %d joined; network sent %d, lost %d, to silent %d, to departed %d, queue overflow %d",
				s.label(), s.Setup.Round(time.Second), (s.Wall-s.Setup).Round(time.Second), len(s.FirstMs), s.Errors, s.AnnFails, s.Left, s.Joined,
				s.Net.Sent, s.Net.Lost, s.Net.Silent, s.Net.NoRoute, s.Net.DroppedFull))
		}
		sec.Notes = append(sec.Notes, fmt.Sprintf("model: median RTT %v, %.0f%% loss, %.0f%% silent, churn %v; none = the percentile's lookups never got there", rtt.Round(time.Millisecond), 100*o.loss, 100*o.silent, o.churn))
		out = append(out, sec)
	}
	return out
}

// loadavg is the 1-minute load average, for the record.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
