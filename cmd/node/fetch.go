package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"node/metadata"
	"node/peer"
)

func runFetch(args []string, stdout, stderr io.Writer) error {
	var f dhtFlags
	fs := newFlagSet("fetch", stderr, "node fetch [flags] <magnet|file.torrent>")
	f.register(fs, ":0")
	dir := fs.String("dir", ".", "download `directory`")
	seedRatio := fs.Float64("seed-ratio", 0, "after completing, seed until uploaded/size reaches this `ratio` (0: until interrupted)")
	noSeed := fs.Bool("no-seed", false, "exit as soon as the download is complete and verified")
	metaOnly := fs.Bool("metadata-only", false, "only fetch the info dictionary and write it as a .torrent (with -o)")
	outFile := fs.String("o", "", "with --metadata-only: the .torrent `file` to write")
	jsonOut := fs.Bool("json", false, "print one JSON event per line on stdout instead of a progress line")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up if there is no metadata, or no peer, after this long (0: never)")
	upRate, downRate := registerRateFlags(fs)
	overwrite := fs.Bool("overwrite", false, "write over files already at the torrent's paths that hold other data (by default node stops, exit 7); data that verifies is kept. "+
		"A file holding the right data but sharing a piece with a missing neighbouring file is refused too (that piece cannot verify), and --overwrite loses nothing there")
	osCache := fs.Bool("os-cache", false, "write through the page cache instead of direct I/O (direct I/O is used where the file system allows)")
	f.logLevel = "warn"
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usagef("want one magnet link or .torrent file, got %d arguments", fs.NArg())
	}
	if *metaOnly && *outFile == "" {
		return usagef("--metadata-only needs -o file.torrent")
	}
	if *seedRatio < 0 {
		return usagef("--seed-ratio must be positive")
	}
	bootstrapSet := flagSet(fs, "bootstrap")
	tg, err := loadTarget(fs.Arg(0))
	if err != nil {
		return inputError(err)
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	out := newReporter(stdout, stderr, *jsonOut)
	if tg.trackers > 0 {
		out.note(fmt.Sprintf("ignoring %d tracker(s): node finds peers through the DHT only", tg.trackers))
	}

	t, err := runSwarm(&f, bootstrapSet, tg, *dir, log, out, func(c *peer.Config) {
		c.MetadataOnly = *metaOnly
		c.OSCache = *osCache
		c.Overwrite = *overwrite
		c.MaxUploadRate, c.MaxDownloadRate = upRate.bytes, downRate.bytes
	}, superviseOpts{timeout: *timeout, noSeed: *noSeed, metaOnly: *metaOnly, ratio: *seedRatio})
	if *metaOnly && err == nil {
		return writeTorrent(t, *outFile, out)
	}
	return err
}

// registerRateFlags adds --max-upload-rate and --max-download-rate.
func registerRateFlags(fs *flag.FlagSet) (up, down *rateFlag) {
	up, down = new(rateFlag), new(rateFlag)
	fs.Var(up, "max-upload-rate", "cap on piece data sent, in bytes/s over all peers, e.g. 500K, 2M, 1.5MiB (K/M/G: powers of 1000; KiB/MiB/GiB: powers of 1024; 0: unlimited)")
	fs.Var(down, "max-download-rate", "cap on piece data received, in bytes/s over all peers; same `rate` syntax as --max-upload-rate")
	return up, down
}

// rateFlag is a rate in bytes per second, parsed by parseRate.
type rateFlag struct{ bytes int64 }

func (r *rateFlag) String() string {
	if r == nil {
		return "0"
	}
	return strconv.FormatInt(r.bytes, 10)
}

func (r *rateFlag) Set(s string) error {
	n, err := parseRate(s)
	if err != nil {
		return err
	}
	r.bytes = n
	return nil
}

// rateUnits are parseRate's units, lower-cased: K, M and G are decimal
// (as in network speeds), KiB, MiB and GiB binary.
var rateUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// parseRate parses a rate in bytes per second: a non-negative number,
// possibly fractional, then an optional unit — B; K or KB (1000), M or MB
// (1000²), G or GB (1000³); KiB (1024), MiB (1024²), GiB (1024³) — case
// insensitive, optionally followed by "/s". "500K" is 500000, "2M"
// 2000000, "1.5MiB" 1572864. 0 means unlimited; a positive rate that
// rounds to less than 1 byte/s is refused rather than taken as unlimited.
func parseRate(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	if len(s) >= 2 && strings.EqualFold(s[len(s)-2:], "/s") {
		s = strings.TrimSpace(s[:len(s)-2])
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("rate %q: negative", in)
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := rateUnits[unit]
	if !ok {
		return 0, fmt.Errorf("rate %q: unknown unit %q (use K, M, G, KiB, MiB or GiB)", in, s[i:])
	}
	if num == "" {
		return 0, fmt.Errorf("rate %q: no number", in)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("rate %q: bad number", in)
	}
	v := math.Round(f * mult)
	switch {
	case v >= 1<<62:
		return 0, fmt.Errorf("rate %q: too large", in)
	case v == 0 && f != 0:
		return 0, fmt.Errorf("rate %q: below 1 byte/s (0 is unlimited)", in)
	}
	return int64(v), nil
}

type superviseOpts struct {
	timeout  time.Duration
	noSeed   bool // stop once complete
	metaOnly bool // the torrent stops itself once it has metadata
	seedOnly bool // node seed: never downloads, so "complete" is not the goal
	ratio    float64
}

// supervise follows a running torrent: progress, the timeout, seeding
// until the ratio, and Ctrl-C. It returns the command's outcome.
func supervise(ctx context.Context, sw *swarm, out *reporter, o superviseOpts, runErr <-chan error, cancelRun context.CancelFunc) error {
	t := sw.t
	timeout, ratio, stopWhenDone := o.timeout, o.ratio, o.noSeed
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var everPeer, done bool
	// meta and complete are set to nil once handled: a closed channel in
	// a select is always ready, and would spin this loop.
	meta, complete := t.Metadata(), t.Done()
	finish := func(err error) error {
		cancelRun()
		if rerr := <-runErr; err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
			err = exitFor(rerr)
		}
		return err
	}
	for {
		select {
		case err := <-runErr:
			runErr = nil
			out.end()
			if err != nil && !errors.Is(err, context.Canceled) {
				return exitFor(err)
			}
			if o.metaOnly && t.Info() != nil {
				return nil
			}
			select {
			case <-t.Done():
				return nil
			default:
				return exitError{exitFailure, "stopped before the download completed"}
			}
		case <-meta:
			meta = nil
			s, _ := statsNow(t)
			out.metadata(s)
		case <-complete:
			complete = nil
			done = true
			s, _ := statsNow(t)
			out.complete(s)
			if stopWhenDone {
				return finish(nil)
			}
			out.note("seeding; press Ctrl-C to stop")
		case <-tick.C:
			s, err := statsNow(t)
			if err != nil {
				continue
			}
			everPeer = everPeer || s.Peers > 0
			if !o.seedOnly || !done {
				out.progress(s, time.Since(start))
			}
			if timeout > 0 && time.Since(start) > timeout && (!s.HaveInfo || !everPeer) {
				out.end()
				what := "no peers"
				if !s.HaveInfo {
					what = "no metadata"
				}
				return finish(exitError{exitNoPeers, fmt.Sprintf("%s after %v", what, timeout)})
			}
			if done && ratio > 0 && s.Length > 0 && float64(s.Uploaded)/float64(s.Length) >= ratio {
				out.end()
				out.note(fmt.Sprintf("seed ratio %.2f reached", ratio))
				return finish(nil)
			}
		case <-ctx.Done():
			out.end()
			s, _ := statsNow(t)
			if done {
				return finish(nil)
			}
			err := finish(nil)
			if err != nil {
				return err
			}
			return exitError{exitSignal, fmt.Sprintf("interrupted at %d of %d pieces; run the same command again to resume", s.Have, s.Pieces)}
		}
	}
}

func statsNow(t *peer.Torrent) (peer.Stats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return t.Stats(ctx)
}

func writeTorrent(t *peer.Torrent, path string, out *reporter) error {
	info := t.Info()
	if info == nil {
		return exitError{exitNoPeers, "no metadata"}
	}
	b, err := (&metadata.MetaInfo{Info: info, CreatedBy: peer.ClientVersion}).Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return exitError{exitDisk, err.Error()}
	}
	out.note("wrote " + path)
	return nil
}

// reporter prints progress: a live line on a terminal, a plain line every
// few seconds otherwise, or JSON events with --json.
type reporter struct {
	stdout, stderr io.Writer
	json, tty      bool
	lastLine       time.Time
	lastDone       int64
	lastAt         time.Time
	live           bool
}

func newReporter(stdout, stderr io.Writer, jsonOut bool) *reporter {
	return &reporter{stdout: stdout, stderr: stderr, json: jsonOut, tty: isTerminal(stderr)}
}

func (r *reporter) event(kind string, fields map[string]any) {
	fields["event"] = kind
	fields["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(fields)
	fmt.Fprintf(r.stdout, "%s\n", b)
}

func (r *reporter) note(msg string) {
	if r.json {
		r.event("note", map[string]any{"message": msg})
		return
	}
	r.end()
	fmt.Fprintln(r.stderr, msg)
}

func (r *reporter) metadata(s peer.Stats) {
	if r.json {
		r.event("metadata", map[string]any{"name": s.Name, "bytes": s.Length, "pieces": s.Pieces, "have": s.Have, "after_ms": s.MetadataAfter.Milliseconds()})
		return
	}
	r.note(fmt.Sprintf("metadata: %q, %s in %d pieces (%d already on disk)", s.Name, size(s.Length), s.Pieces, s.Have))
}

func (r *reporter) complete(s peer.Stats) {
	if r.json {
		r.event("complete", map[string]any{"name": s.Name, "bytes": s.Length, "after_ms": s.CompleteAfter.Milliseconds(),
			"downloaded": s.Downloaded, "wasted": s.Wasted, "hash_fails": s.HashFails, "peers": s.Peers})
		return
	}
	r.note(fmt.Sprintf("complete: %q, %s, every piece verified", s.Name, size(s.Length)))
}

func (r *reporter) progress(s peer.Stats, elapsed time.Duration) {
	now := time.Now()
	rate := 0.0
	if !r.lastAt.IsZero() {
		rate = float64(s.Done-r.lastDone) / now.Sub(r.lastAt).Seconds()
	}
	r.lastDone, r.lastAt = s.Done, now
	if r.json {
		r.event("progress", map[string]any{"have": s.Have, "pieces": s.Pieces, "bytes_done": s.Done, "bytes": s.Length,
			"rate": int64(rate), "peers": s.Peers, "uploaded": s.Uploaded})
		return
	}
	var line string
	switch {
	case !s.HaveInfo:
		line = fmt.Sprintf("fetching metadata: %d peers, %d known, %v", s.Peers, s.Known, elapsed.Round(time.Second))
	default:
		pct := 100 * float64(s.Done) / float64(max(s.Length, 1))
		eta := "--"
		if rate > 0 && s.Done < s.Length {
			eta = (time.Duration(float64(s.Length-s.Done)/rate) * time.Second / time.Second).Round(time.Second).String()
		}
		line = fmt.Sprintf("%5.1f%% %s/%s  %s/s  ETA %s  peers %d  up %s", pct, size(s.Done), size(s.Length), size(int64(rate)), eta, s.Peers, size(s.Uploaded))
	}
	if r.tty {
		fmt.Fprintf(r.stderr, "\r\033[K%s", line)
		r.live = true
		return
	}
	if now.Sub(r.lastLine) >= 5*time.Second {
		r.lastLine = now
		fmt.Fprintln(r.stderr, line)
	}
}

// end finishes a live line so that the next output starts on its own.
func (r *reporter) end() {
	if r.live {
		fmt.Fprintln(r.stderr)
		r.live = false
	}
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
