package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"node/internal/bench/benchfmt"
	"node/internal/bench/benchkit"
)

// rssTarget bounds the hostile fetch's peak RSS: a public swarm's liars
// must not cost a user much more memory than a clean fetch.
const rssTarget = 64.0 // MiB

// completeTarget bounds hostile / clean time to complete: liars may slow
// a fetch, not stop it.
const completeTarget = 2.0

// benchFile is the shared bench schema plus every run's raw figures
// (ignored by internal/bench/driver's merger).
type benchFile struct {
	Sections []benchfmt.Section `json:"sections"`
	Raw      []runResult        `json:"raw,omitempty"`
}

type section benchfmt.Section

func (s section) asList() []benchfmt.Section { return []benchfmt.Section{benchfmt.Section(s)} }

// median is -1 for no runs: a figure never negative otherwise.
func median(xs []float64) float64 { return benchkit.Median(xs, -1) }

// pick is f over the runs of kind; completed only, or all.
func pick(runs []runResult, kind string, completed bool, f func(runResult) float64) []float64 {
	var xs []float64
	for _, r := range runs {
		if r.Kind == kind && (!completed || r.Error == "") {
			xs = append(xs, f(r))
		}
	}
	return xs
}

func makeSection(res results, sw *swarm) section {
	runs := res.runs
	count := func(kind string) (all, ok int) {
		for _, r := range runs {
			if r.Kind == kind {
				all++
				if r.Error == "" {
					ok++
				}
			}
		}
		return all, ok
	}
	hAll, hOK := count("hostile")
	cAll, cOK := count("clean")
	sec := section{Name: fmt.Sprintf("hostile-swarm soak: fetch 64 MiB (4 files) by magnet from 2 seeders among 20 hostile peers "+
		"and 200 DHT flooders, vs the same with none (median of %d)", max(hOK, cOK))}

	// Times: over completed runs; if any hostile run failed, it never
	// completed within its limit, so its figure is -1 (not a ratio).
	med := func(kind string, f func(runResult) float64) float64 { return median(pick(runs, kind, true, f)) }
	peak := func(kind string, f func(runResult) float64) float64 {
		xs := pick(runs, kind, false, f)
		if len(xs) == 0 {
			return -1
		}
		return slices.Max(xs)
	}
	row := func(metric, unit string, hostile, clean float64) benchfmt.Row {
		r := benchfmt.Row{Metric: metric, Unit: unit, Ours: hostile, Better: "lower"}
		if clean >= 0 {
			r.Anacrolix = &clean
		}
		return r
	}
	hMeta, cMeta := med("hostile", func(r runResult) float64 { return r.Metadata }), med("clean", func(r runResult) float64 { return r.Metadata })
	hDone, cDone := med("hostile", func(r runResult) float64 { return r.Complete }), med("clean", func(r runResult) float64 { return r.Complete })
	if hOK < hAll {
		hMeta, hDone = -1, -1
	}
	rows := []benchfmt.Row{row("time to metadata", "s", hMeta, cMeta)}
	done := row("time to complete", "s", hDone, cDone)
	done.Target = fmt.Sprintf("<= %.1fx", completeTarget)
	met := hOK > 0 && hOK == hAll && cDone > 0 && hDone/cDone <= completeTarget
	done.Met = &met
	rows = append(rows, done)
	hRSS, cRSS := peak("hostile", func(r runResult) float64 { return r.MaxRSSMiB }), peak("clean", func(r runResult) float64 { return r.MaxRSSMiB })
	rss := row("peak RSS, highest of the runs", "MiB", hRSS, cRSS)
	rss.Target = fmt.Sprintf("< %.0f MiB", rssTarget)
	rssMet := hAll > 0 && hRSS >= 0 && hRSS < rssTarget
	rss.Met = &rssMet
	rows = append(rows, rss,
		row("CPU user+sys", "s", median(pick(runs, "hostile", false, func(r runResult) float64 { return r.CPU })),
			median(pick(runs, "clean", false, func(r runResult) float64 { return r.CPU }))),
		row("pieces that failed their hash", "count", med("hostile", func(r runResult) float64 { return float64(r.HashFails) }),
			med("clean", func(r runResult) float64 { return float64(r.HashFails) })),
		row("wasted", "MiB", med("hostile", func(r runResult) float64 { return r.WastedMiB }),
			med("clean", func(r runResult) float64 { return r.WastedMiB })),
		pingRow(runs),
		row("peers banned", "count", median(pick(runs, "hostile", false, func(r runResult) float64 { return float64(len(r.Bans)) })),
			median(pick(runs, "clean", false, func(r runResult) float64 { return float64(len(r.Bans)) }))),
		row("connections dropped", "count", median(pick(runs, "hostile", false, func(r runResult) float64 { return float64(sum(r.Drops)) })),
			median(pick(runs, "clean", false, func(r runResult) float64 { return float64(sum(r.Drops)) }))),
	)
	sec.Rows = rows

	n := &sec.Notes
	add := func(format string, a ...any) { *n = append(*n, fmt.Sprintf(format, a...)) }
	add("columns: \"ours\" = the HOSTILE run, \"anacrolix\" = the CLEAN run (both are our node fetch; the schema has two columns), " +
		"so ratio = hostile / clean; times from the fetch process's start, medians over completed runs (-1: a hostile run did not " +
		"complete within its limit); peak RSS = the highest ru_maxrss of all runs of a kind; the other counts are medians")
	add("runs: %d clean (%d completed), %d hostile (%d completed), in pairs (clean then hostile; two torrents of the same bytes, "+
		"so the hostile swarm's announces never reach the clean one); each completed download verified against the source's SHA-256",
		cAll, cOK, hAll, hOK)
	for _, s := range res.notes {
		add("%s", s)
	}
	for _, r := range runs {
		if r.Error != "" {
			add("FAILED: %s run %d: %s", r.Kind, r.Run, r.Error)
		}
	}
	var kinds []string
	for _, k := range adversaryKinds {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k.name, k.count))
	}
	add("hostile swarm: 2 honest seeders (node seed) and 19 adversarial peers announced into the 8-node DHT (%s), "+
		"plus a squatter that dials the fetcher's port %d times with distinct peer IDs from one IP; 200 DHT flooders "+
		"(100 at the fetcher's DHT port, 100 at the DHT nodes; garbage, truncated and well-formed queries; %d/s each, a quarter at %d/s); "+
		"a DHT node next to the info-hash answering get_peers with %d junk values in 127.0.99.0/24",
		strings.Join(kinds, ", "), squatConns, int(1/floodEvery.Seconds()), int(heavyFactor/floodEvery.Seconds()), junkValues)
	for _, r := range runs {
		a := r.Attack
		if a == nil {
			continue
		}
		line := fmt.Sprintf("%s run %d: complete %.2f s, peak RSS %.1f MiB; sockets open at %.2f s; the fetcher's DHT node answered %d of our %d pings",
			r.Kind, r.Run, r.Complete, r.MaxRSSMiB, a.BoundAfter, a.PingsAnswered, a.PingsSent)
		if a.Hostile {
			line += fmt.Sprintf("; flood packets %d to the fetcher, %d to the DHT; squatter handshakes %d of %d; "+
				"junk node asked get_peers %d times; connections accepted per behaviour %s",
				a.FloodFetcher, a.FloodHonest, a.SquatHeld, squatConns, a.JunkGetPeers, mapString(a.Accepted))
		}
		add("%s", line)
	}
	for _, kind := range []string{"hostile", "clean"} {
		bans := map[string]map[string]int{} // reason → peer kind → count
		drops := map[string]int{}
		nr, lines := 0, 0
		for _, r := range runs {
			if r.Kind != kind {
				continue
			}
			nr++
			for _, b := range r.Bans {
				key := reasonKey(b.Reason)
				if bans[key] == nil {
					bans[key] = map[string]int{}
				}
				bans[key][b.Kind]++
			}
			for k, v := range r.Drops {
				drops[k] += v
			}
			lines += r.DropLines
		}
		if nr == 0 {
			continue
		}
		var bs []string
		for why, by := range bans {
			bs = append(bs, fmt.Sprintf("%q: %s", why, mapString(by)))
		}
		sort.Strings(bs)
		if len(bs) == 0 {
			bs = []string{"none"}
		}
		add("%s runs (%d), bans by reason (peer behaviour: count): %s", kind, nr, strings.Join(bs, "; "))
		add("%s runs (%d), connections dropped by peer behaviour and error (count; %d log lines in all): %s", kind, nr, lines, topCounts(drops, 14))
	}
	add("everything on loopback: DHT 127.0.95.101-108, seeders 127.0.95.1-2/.11-12, fetchers 127.0.95.201-202, adversaries 127.0.96.x, " +
		"flooders 127.0.97-98.x; node fetch with --bootstrap, --listen, --log-json --log-level info (bans and drops are read from its log)")
	return sec
}

// pingRow is the median share of our pings of the fetcher's DHT node
// that it answered, hostile against clean.
func pingRow(runs []runResult) benchfmt.Row {
	share := func(kind string) float64 {
		var xs []float64
		for _, r := range runs {
			if a := r.Attack; r.Kind == kind && a != nil && a.PingsSent > 0 {
				xs = append(xs, 100*float64(a.PingsAnswered)/float64(a.PingsSent))
			}
		}
		return median(xs)
	}
	r := benchfmt.Row{Metric: "our pings its DHT node answered", Unit: "%", Ours: share("hostile"), Better: "higher"}
	if c := share("clean"); c >= 0 {
		r.Anacrolix = &c
	}
	return r
}

// mapString is m as "k: v, ..." in key order.
func mapString(m map[string]int) string {
	var ks []string
	for k, v := range m {
		if v != 0 {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// topCounts is the n largest of m, "key ×count", and how many others.
func topCounts(m map[string]int, n int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return m[ks[i]] > m[ks[j]] || m[ks[i]] == m[ks[j]] && ks[i] < ks[j] })
	var parts []string
	rest := 0
	for i, k := range ks {
		if i < n {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
		} else {
			rest += m[k]
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	s := strings.Join(parts, "; ")
	if rest > 0 {
		s += fmt.Sprintf("; %d others", rest)
	}
	return s
}
