// Command soakbench is the hostile-swarm soak: our node fetch
// of a 64 MiB magnet link against 2 honest seeders and 20 adversarial
// peers of mixed behaviours, under a flood of 200 DHT sources, against
// the same fetch with no adversaries. It is a benchmark, not a timed
// test: it reports figures and whether its targets are met.
//
// It builds our node binary (go build ./cmd/node, or takes -node) and
// the launcher (internal/bench/benchkit/spawn, for an honest ru_maxrss of
// each fetch process) into a temp directory; generates 64 MiB of
// pseudo-random bytes in 4 files, and a hard-linked copy under another
// name, so that there are two torrents (256 KiB pieces) of the same bytes
// with different info-hashes: one for the clean runs, one for the hostile
// runs, which can then take turns (the machine's load changes over time)
// without the hostile swarm's announces leaking into the clean one. It
// starts 8 of our DHT nodes (package dht, with the command line's abuse
// limits) and 4 node seed processes (2 per torrent), and waits until the
// DHT has each seeder's announce. The magnet links carry no peer address.
//
// The hostile torrent also has, announced into the same DHT with
// announce_peer from their own addresses, 19 peers of
// internal/adversary's behaviours (see adversaries in swarm.go): liars
// about metadata_size, senders of unrequested junk ut_metadata data,
// senders of corrupt blocks, keep-alive squatters, non-readers that ask
// for metadata and blocks, port-message flooders, 64 KiB-bitfield
// streamers, an oversized-message streamer and a slow one; and, during
// each hostile run, a 20th that dials the fetcher's listen port 60 times
// with distinct peer IDs and holds the connections; 200 DHT sources
// sending garbage and well-formed queries (100 at the fetcher's DHT port,
// 100 at the honest DHT nodes; a quarter of each at 10 times the rate);
// and a DHT node with an ID next to the info-hash that answers get_peers
// with junk values (loopback addresses where nothing listens) and pings
// the fetcher so that its lookups find it.
//
// Each run is node fetch --json --no-seed --log-json --log-level info,
// in its own process through the launcher, into an empty directory, with
// an explicit --bootstrap and --listen on loopback. It records, from the
// process's start, the time to its "metadata" and "complete" events, its
// CPU time and peak RSS (ru_maxrss), and, from its log on stderr, every
// "banning peer" (with its reason) and "dropping peer" (with its error),
// grouped by reason and by the behaviour of the peer concerned. Every
// download is checked against the source's SHA-256 sums.
//
// Runs go in pairs, clean then hostile, -runs times (3) if they fit in
// the time (-deadline, 3m20s, whole run included); the figures are the
// medians. It prints one table and, with -json, writes it in the shared
// bench schema (internal/bench/benchfmt) with every run's raw figures under
// "raw". The schema's two columns are used as ours = hostile run and
// anacrolix = clean run, so that the merged table's ratio is hostile /
// clean; a note says so.
//
// Everything runs on loopback: DHT nodes on 127.0.95.101-108, seeders on
// 127.0.95.1-2 (clean) and 127.0.95.11-12 (hostile), the fetchers on
// 127.0.95.201 (clean) and .202 (hostile), adversarial peers on
// 127.0.96.1-20, the junk DHT node on 127.0.96.250, the flooders on
// 127.0.97.x and 127.0.98.x; junk values point into 127.0.99.0/24.
// Nothing contacts any other address.
//
// Usage:
//
//	go run ./internal/bench/soakbench [-json out.json] [-runs 3] [-node bin/node] [-deadline 3m20s] [-keep]
//
// The exit status is 1 if a run failed (a fetch that did not complete in
// its time, or whose bytes differ), 0 otherwise, targets met or not.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"node/internal/bench/benchfmt"
	"node/internal/bench/benchkit"
)

const (
	cleanLimit   = 45 * time.Second // a clean fetch process is killed after this
	hostileLimit = 60 * time.Second // and a hostile one after this
	buildLimit   = 2 * time.Minute
	setupLimit   = time.Minute // content, DHT, seeders, adversaries
	// reserve is kept for stopping everything and writing the report.
	reserve = 15 * time.Second
)

type options struct {
	runs     int
	jsonPath string
	nodeBin  string
	deadline time.Duration
	keep     bool
	logDir   string
	logLevel string
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func main() {
	if err := soak(); err != nil {
		fmt.Fprintln(os.Stderr, "soakbench:", err)
		os.Exit(1)
	}
}

func parseFlags() (options, error) {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "pairs of runs (clean, hostile) if they fit in the time; the median is reported")
	flag.StringVar(&o.jsonPath, "json", "", "write results as JSON to this `file`")
	flag.StringVar(&o.nodeBin, "node", "", "our node `binary` (default: go build ./cmd/node into the temp dir)")
	flag.DurationVar(&o.deadline, "deadline", 3*time.Minute+20*time.Second, "stop everything after this long, builds included")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp directory")
	flag.StringVar(&o.logDir, "logs", "", "write each fetch's log to `dir`/KIND-runN.log")
	flag.StringVar(&o.logLevel, "log-level", "info", "the fetches' --log-level (bans and drops are read at info)")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if o.runs < 1 || o.runs > 9 || o.deadline < time.Minute {
		return o, errors.New("want 1 ≤ -runs ≤ 9, -deadline ≥ 1m")
	}
	return o, nil
}

func soak() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	began := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithDeadline(ctx, began.Add(o.deadline))
	defer cancel()

	tmp, err := os.MkdirTemp("", "soakbench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer logf("kept %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	bctx, bcancel := context.WithTimeout(ctx, buildLimit)
	launcher, err := build(bctx, tmp, &o)
	bcancel()
	if err != nil {
		return err
	}

	sctx, scancel := context.WithTimeout(ctx, setupLimit)
	sw, err := setUp(sctx, tmp, o.nodeBin)
	scancel()
	defer sw.close()
	if err != nil {
		return fmt.Errorf("setting up: %w", err)
	}
	logf("set up in %v", time.Since(began).Round(100*time.Millisecond))

	res := runPairs(ctx, o, sw, launcher)
	sec := makeSection(res, sw)
	benchkit.PrintSection(os.Stdout, benchfmt.Section(sec), "hostile", "clean", 11)
	if o.jsonPath != "" {
		if err := benchkit.WriteJSON(o.jsonPath, benchFile{Sections: sec.asList(), Raw: res.runs}); err != nil {
			return err
		}
		logf("wrote %s", o.jsonPath)
	}
	logf("total %v", time.Since(began).Round(100*time.Millisecond))
	if len(res.failed) > 0 {
		return fmt.Errorf("runs failed: %s", strings.Join(res.failed, "; "))
	}
	return nil
}

// build makes our node binary (unless -node gave one) and the launcher.
func build(ctx context.Context, tmp string, o *options) (launcher string, err error) {
	if o.nodeBin == "" {
		logf("go build node/cmd/node")
	}
	if o.nodeBin, err = benchkit.NodeBinary(ctx, tmp, o.nodeBin, "soakbench"); err != nil {
		return "", err
	}
	logf("building the launcher")
	return benchkit.BuildLauncher(ctx, tmp)
}
