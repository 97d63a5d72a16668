package main

import (
	"fmt"
	"net/netip"
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
func makeSection(title string, s scenario, c *content, seeds []netip.AddrPort, all []runResult, lt libtorrent) benchfmt.Section {
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
