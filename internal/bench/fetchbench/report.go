package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"node/internal/bench/benchfmt"
	"node/internal/bench/benchkit"
)

// The shared bench schema (internal/bench/driver merges files of it into
// one table); the ratio is the merger's to compute.
type benchFile struct {
	Sections []benchfmt.Section `json:"sections"`
	// Raw is every run's figures and events by scenario key; not part of
	// the schema, ignored by the merger.
	Raw map[string][]runResult `json:"raw,omitempty"`
}

// libtorrentSeconds is libtorrent 2.0.8's time for the 1 GiB fetch from
// process start, as measured on this machine's kind: the reference when libtorrent
// cannot be run here.
const libtorrentSeconds = 2.6

// medianOf is the median of f over client's runs.
func medianOf(all []runResult, client string, f func(runResult) float64) float64 {
	var xs []float64
	for _, r := range all {
		if r.Client == client {
			xs = append(xs, f(r))
		}
	}
	return benchkit.Median(xs, 0)
}

func peersOf(all []runResult, client string) []int {
	var ps []int
	for _, r := range all {
		if r.Client == client {
			ps = append(ps, r.Peers)
		}
	}
	return ps
}

// ratioRow is a row whose target, if any, is "<= Nx" of anacrolix's figure.
func ratioRow(metric, unit, better string, ours, theirs float64, target string) benchfmt.Row {
	r := benchfmt.Row{Metric: metric, Unit: unit, Ours: ours, Anacrolix: &theirs, Better: better}
	if target != "" {
		r.Target = target
		x, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(target, "<= "), "x"), 64)
		met := err == nil && theirs > 0 && ours/theirs <= x
		r.Met = &met
	}
	return r
}

// makeSection turns a scenario's runs into its section. With no runs of
// ours or anacrolix's it has no rows (the caller adds why). lt is the
// libtorrent leecher the scenario ran, if any (its python is "" if not).
func makeSection(title string, s scenario, c *content, seeds []netip.AddrPort, all []runResult, lt libtorrent, plain []runResult) benchfmt.Section {
	if s.transport != "" {
		return transportSection(title, s, c, all, lt, plain)
	}
	sec := benchfmt.Section{Name: title}
	count := func(client string) int {
		n := 0
		for _, r := range all {
			if r.Client == client {
				n++
			}
		}
		return n
	}
	if count("ours") == 0 || count("anacrolix") == 0 {
		return sec
	}
	target := func(t string) string {
		if s.targets {
			return t
		}
		return ""
	}
	m := func(f func(runResult) float64) (float64, float64) {
		return medianOf(all, "ours", f), medianOf(all, "anacrolix", f)
	}
	meta, metaA := m(func(r runResult) float64 { return r.Metadata })
	done, doneA := m(func(r runResult) float64 { return r.Complete })
	rate, rateA := m(func(r runResult) float64 { return r.MiBps })
	cpu, cpuA := m(func(r runResult) float64 { return r.CPU })
	rss, rssA := m(func(r runResult) float64 { return r.MaxRSSMiB })
	data, dataA := m(func(r runResult) float64 { return r.DataMiBps })
	exit, exitA := m(func(r runResult) float64 { return r.Exited })
	seedCPU, seedCPUA := m(func(r runResult) float64 { return r.SeederCPU })
	sec.Rows = []benchfmt.Row{
		ratioRow("time to metadata", "s", "lower", meta, metaA, target("<= 1.0x")),
		ratioRow("time to complete", "s", "lower", done, doneA, target("<= 0.6x")),
		ratioRow("throughput", "MiB/s", "higher", rate, rateA, ""),
		ratioRow("CPU user+sys", "s", "lower", cpu, cpuA, target("<= 0.5x")),
		ratioRow("peak RSS", "MiB", "lower", rss, rssA, target("<= 1.0x")),
		ratioRow("seeder CPU user+sys", "s", "lower", seedCPU, seedCPUA, ""),
	}
	switch {
	case count("libtorrent") > 0:
		// The schema has two columns, ours and anacrolix's: libtorrent's
		// figures go in a row of their own (the ratio) and a note.
		l := func(f func(runResult) float64) float64 { return medianOf(all, "libtorrent", f) }
		doneL := l(func(r runResult) float64 { return r.Complete })
		met := doneL > 0 && done/doneL < 1
		sec.Rows = append(sec.Rows, benchfmt.Row{Metric: "time to complete vs libtorrent (ours/libtorrent)", Unit: "x",
			Ours: done / doneL, Better: "lower", Target: "< 1.0", Met: &met})
		sec.Notes = append(sec.Notes, fmt.Sprintf(
			"libtorrent %s (python3-libtorrent: a Python leecher in its own process on 127.0.94.x, the same seeder found "+
				"through the same DHT; libtorrent's defaults but for no uTP and nothing beyond loopback; its default mmap "+
				"disk I/O counts the pages it writes in its RSS), median of %d: metadata %.2f s, complete %.2f s, "+
				"%.1f MiB/s, CPU %.2f s, peak RSS %.1f MiB; peers used per run %v (delivered data)",
			lt.version, count("libtorrent"), l(func(r runResult) float64 { return r.Metadata }), doneL,
			l(func(r runResult) float64 { return r.MiBps }), l(func(r runResult) float64 { return r.CPU }),
			l(func(r runResult) float64 { return r.MaxRSSMiB }), peersOf(all, "libtorrent")))
	case s.targets:
		why := lt.why
		if lt.python != "" {
			why = "no libtorrent run completed"
		}
		verdict := "beaten"
		if done >= libtorrentSeconds {
			verdict = fmt.Sprintf("not beaten (%.2fx)", done/libtorrentSeconds)
		}
		sec.Notes = append(sec.Notes, fmt.Sprintf(
			"libtorrent 2.0.8 completes the same 1 GiB in about %.1f s from process start (reference, not run here: %s): ours %.2f s, %s",
			libtorrentSeconds, why, done, verdict))
	}
	seedStr := make([]string, len(seeds))
	for i, a := range seeds {
		seedStr[i] = a.String()
	}
	sec.Notes = append(sec.Notes,
		fmt.Sprintf("%d pieces of 1 MiB; times from the leecher process's start; throughput = size / time to complete; "+
			"after metadata %.1f vs %.1f MiB/s; process exit at %.2f vs %.2f s",
			c.mi.Info.NumPieces(), data, dataA, exit, exitA),
		fmt.Sprintf("peers used per run: ours %v (most connected at once), "+
			"anacrolix %v (delivered data); seeders %s, found through our DHT (no x.pe)",
			peersOf(all, "ours"), peersOf(all, "anacrolix"), strings.Join(seedStr, " ")),
		"leechers in their own processes, taking turns going first; every download verified against the source's SHA-256",
	)
	if s.ourSeeder {
		sec.Notes = append(sec.Notes,
			"seeder: our node seed (the -node binary) in its own process, serving a hard-linked copy of the content under "+
				"another name (another info-hash, so no anacrolix seeder is found); seeder CPU = that process's "+
				"utime+stime (/proc/PID/stat) over each leecher's run, from launch to exit")
	} else {
		sec.Notes = append(sec.Notes,
			"seeder: anacrolix/torrent in fetchbench's process, file storage with pread/pwrite (no mmap); seeder CPU = "+
				"getrusage(RUSAGE_SELF) of fetchbench over each leecher's run, from launch to exit, so it includes "+
				"fetchbench's 8 DHT nodes (idle during a fetch) and its reading of the leecher's output")
	}
	return sec
}

// transportSection is the section of a scenario over another transport
// than plain TCP: ours against libtorrent, both from our node seed, with
// libtorrent's figures in the schema's second column. plain are the
// runs of 1g-ours in the same invocation, if it ran: the targets that
// compare with plain TCP (uTP at least half its throughput; encryption
// at most 0.3 CPU-s per GiB more, leecher and seeder together) are rows
// of their own, per GiB, ours and libtorrent's each against its own
// plain-TCP run.
func transportSection(title string, s scenario, c *content, all []runResult, lt libtorrent, plain []runResult) benchfmt.Section {
	sec := benchfmt.Section{Name: title}
	gib := float64(c.total) / (1 << 30)
	has := func(rs []runResult, client string) bool {
		return slices.ContainsFunc(rs, func(r runResult) bool { return r.Client == client })
	}
	if !has(all, "ours") {
		return sec
	}
	withLT := has(all, "libtorrent")
	row := func(metric, unit, better string, f func(runResult) float64) benchfmt.Row {
		r := benchfmt.Row{Metric: metric, Unit: unit, Better: better, Ours: medianOf(all, "ours", f)}
		if withLT {
			v := medianOf(all, "libtorrent", f)
			r.Anacrolix = &v
		}
		return r
	}
	perGiB := func(f func(runResult) float64) func(runResult) float64 {
		return func(r runResult) float64 { return f(r) / gib }
	}
	sec.Rows = []benchfmt.Row{
		row("time to metadata", "s", "lower", func(r runResult) float64 { return r.Metadata }),
		row("time to complete", "s", "lower", func(r runResult) float64 { return r.Complete }),
		row("throughput", "MiB/s", "higher", func(r runResult) float64 { return r.MiBps }),
		row("leecher CPU user+sys per GiB", "CPU-s/GiB", "lower", perGiB(func(r runResult) float64 { return r.CPU })),
		row("seeder CPU user+sys per GiB (node seed)", "CPU-s/GiB", "lower", perGiB(func(r runResult) float64 { return r.SeederCPU })),
		row("peak RSS", "MiB", "lower", func(r runResult) float64 { return r.MaxRSSMiB }),
	}
	const plainGiB = 1.0 // 1g-ours
	switch s.transport {
	case "utp":
		ratio := func(client string) (float64, bool) {
			if !has(all, client) || !has(plain, client) {
				return 0, false
			}
			return medianOf(all, client, func(r runResult) float64 { return r.MiBps }) /
				medianOf(plain, client, func(r runResult) float64 { return r.MiBps }), true
		}
		if q, ok := ratio("ours"); ok {
			r := benchfmt.Row{Metric: "throughput over uTP / over plain TCP (1g-ours, this run)", Unit: "x", Better: "higher", Ours: q}
			if ql, ok := ratio("libtorrent"); ok {
				r.Anacrolix = &ql
			}
			sec.Rows = append(sec.Rows, r)
		}
		if has(all, oursTCP) {
			rate := func(r runResult) float64 { return r.MiBps }
			q := medianOf(all, "ours", rate) / medianOf(all, oursTCP, rate)
			met := q >= 0.5
			sec.Rows = append(sec.Rows, benchfmt.Row{Metric: fmt.Sprintf("throughput over uTP / over plain TCP (ours, the same %d MiB from the same seeder)", s.sizeMiB),
				Unit: "x", Better: "higher", Ours: q, Target: ">= 0.5", Met: &met})
			sec.Notes = append(sec.Notes, fmt.Sprintf("ours over plain TCP (node fetch --no-utp --encryption off, the same seeder and content): "+
				"%.1f MiB/s, leecher %.2f CPU-s/GiB, seeder %.2f CPU-s/GiB", medianOf(all, oursTCP, rate),
				medianOf(all, oursTCP, perGiB(func(r runResult) float64 { return r.CPU })),
				medianOf(all, oursTCP, perGiB(func(r runResult) float64 { return r.SeederCPU }))))
		}
	case "rc4":
		extra := func(client string) (float64, bool) {
			if !has(all, client) || !has(plain, client) {
				return 0, false
			}
			both := func(r runResult) float64 { return r.CPU + r.SeederCPU }
			return medianOf(all, client, both)/gib - medianOf(plain, client, both)/plainGiB, true
		}
		if x, ok := extra("ours"); ok {
			met := x <= 0.3
			r := benchfmt.Row{Metric: "extra CPU over plain TCP (1g-ours, this run), leecher + seeder", Unit: "CPU-s/GiB", Better: "lower",
				Ours: x, Target: "<= 0.3", Met: &met}
			if xl, ok := extra("libtorrent"); ok {
				r.Anacrolix = &xl
			}
			sec.Rows = append(sec.Rows, r)
		}
	}
	links := func(client string) [][]string {
		var ls [][]string
		for _, r := range all {
			if r.Client == client {
				ls = append(ls, r.Links)
			}
		}
		return ls
	}
	how := map[string]string{
		"utp": "ours: node fetch --encryption off (uTP dialled first, TCP only as a fallback that no run used); " +
			"libtorrent: enable_outgoing_tcp and enable_incoming_tcp off, uTP on; the seeder: node seed --encryption off (uTP and TCP)",
		"rc4": "ours: node fetch --no-utp --encryption require; libtorrent: out_enc_policy and in_enc_policy forced, " +
			"allowed_enc_level rc4, no uTP; the seeder: node seed --no-utp --encryption require",
	}[s.transport]
	sec.Notes = append(sec.Notes,
		"second column: libtorrent "+lt.version+" (python3-libtorrent, ltleech.py in its own process on 127.0.94.x), not anacrolix; "+how,
		fmt.Sprintf("what carried each run's data (transport/encryption of the peers that delivered): ours %v, libtorrent %v; "+
			"a run over anything else fails the scenario", links("ours"), links("libtorrent")),
		fmt.Sprintf("%d pieces of 1 MiB, %.2f GiB: per-GiB figures are the run's divided by that; seeder CPU = node seed's "+
			"utime+stime (/proc/PID/stat) over each leecher's run, from launch to exit; every download verified against the source's SHA-256",
			c.mi.Info.NumPieces(), gib))
	if !withLT {
		why := lt.why
		if lt.python != "" {
			why = "no libtorrent run completed"
		}
		sec.Notes = append(sec.Notes, "no libtorrent leecher: "+why)
	}
	if len(plain) == 0 {
		sec.Notes = append(sec.Notes, "1g-ours did not run in this invocation: no comparison with plain TCP")
	}
	if s.transport == "utp" && s.sizeMiB < 1024 {
		sec.Notes = append(sec.Notes, fmt.Sprintf("%d MiB rather than 1 GiB: libtorrent's uTP leecher takes too long "+
			"for 1 GiB within make bench's budget", s.sizeMiB))
	}
	return sec
}
