// Command fetchbench measures fetching one torrent by magnet link from one
// anacrolix/torrent seeder, by our client (node fetch) and by an
// anacrolix/torrent leecher, each leecher in its own process.
//
// It generates size MiB of pseudo-random content in files in nested
// folders, makes a .torrent of it (1 MiB pieces) with node/metadata,
// starts eight of our DHT nodes and an anacrolix seeder in this process,
// waits until the seeder has verified its data and announced itself to
// our DHT, then runs each leecher runs times (alternating which goes
// first), each time into an empty directory. For each run it records, from
// just before the process starts: time to metadata, time to complete,
// MiB/s (size over time to complete), and the leecher process's CPU time
// (user+sys) and peak RSS (ru_maxrss; each leecher is started through a
// tiny launcher, cmd/fetchbench/spawn, so that this program's own RSS does
// not leak into the figure). Every download is checked against
// the source's SHA-256 sums. It prints the medians side by side and, with
// -json, writes them and every run's raw figures to a file.
//
// Everything runs on loopback (127.0.0.0/8): our DHT nodes on 127.0.90.x,
// the seeder on 127.0.91.1, our leechers on 127.0.92.x, anacrolix leechers
// on 127.0.93.x. Nothing contacts any other address: no public DHT
// routers, no trackers, no web seeds, no UPnP/NAT-PMP, no IPv6.
//
// Usage:
//
//	go run ./cmd/fetchbench [-size 256] [-files 20] [-runs 3] [-json out.json] [-node bin/node] [-keep]
//		[-first ours|anacrolix] [-limit 180s] [-serve]
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"node/dht"
	"node/metadata"
	"node/peer/peertest"
)

const (
	pieceLength = 1 << 20
	runLimit    = 180 * time.Second // each leecher process is killed after this
	dhtNodes    = 8
)

func main() {
	// anacrolix reads its file I/O mode in an init function: start again
	// with it set (children inherit it).
	if os.Getenv(fileIOEnv) != "classic" {
		os.Setenv(fileIOEnv, "classic")
		if exe, err := os.Executable(); err == nil {
			err = syscall.Exec(exe, os.Args, os.Environ())
			fmt.Fprintf(os.Stderr, "fetchbench: re-exec with %s=classic: %v\n", fileIOEnv, err)
		}
		os.Exit(1)
	}
	if len(os.Args) > 1 && os.Args[1] == "leech-anacrolix" {
		if err := runLeech(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "leech-anacrolix:", err)
			os.Exit(1)
		}
		return
	}
	if err := bench(); err != nil {
		fmt.Fprintln(os.Stderr, "fetchbench:", err)
		os.Exit(1)
	}
}

type options struct {
	sizeMiB, files, runs int
	jsonPath, nodeBin    string
	keep, serve          bool
	first                string
	limit                time.Duration
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func bench() error {
	var o options
	flag.IntVar(&o.sizeMiB, "size", 256, "total content size in `MiB`")
	flag.IntVar(&o.files, "files", 20, "number of files")
	flag.IntVar(&o.runs, "runs", 3, "runs per client (the median is reported)")
	flag.StringVar(&o.jsonPath, "json", "", "write results as JSON to this `file`")
	flag.StringVar(&o.nodeBin, "node", "", "our node `binary` (default: go build ./cmd/node into the temp dir)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp directory")
	flag.BoolVar(&o.serve, "serve", false, "set up the DHT and the seeder, print how to fetch, and wait for Ctrl-C (for profiling by hand)")
	flag.StringVar(&o.first, "first", "ours", "which client goes first in odd runs: ours or anacrolix")
	flag.DurationVar(&o.limit, "limit", runLimit, "kill a leecher process after this long")
	flag.Parse()
	if o.sizeMiB < 1 || o.files < 1 || o.runs < 1 || o.runs > 250 || o.limit <= 10*time.Second {
		return fmt.Errorf("want -size ≥ 1, -files ≥ 1, 1 ≤ -runs ≤ 250, -limit > 10s")
	}
	if o.first != "ours" && o.first != "anacrolix" {
		return fmt.Errorf("-first: want ours or anacrolix")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	began := time.Now()

	tmp, err := os.MkdirTemp("", "fetchbench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer logf("kept %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	build := func(out, pkg string) error {
		logf("building %s into %s", pkg, out)
		b := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("go build %s (run fetchbench inside the module, or pass -node): %w", pkg, err)
		}
		return nil
	}
	if o.nodeBin == "" {
		o.nodeBin = filepath.Join(tmp, "node")
		if err := build(o.nodeBin, "node/cmd/node"); err != nil {
			return err
		}
	} else if o.nodeBin, err = filepath.Abs(o.nodeBin); err != nil {
		return err
	}
	launcher, err := buildLauncher(ctx, tmp)
	if err != nil {
		return err
	}

	// Content and its torrent.
	src := filepath.Join(tmp, "src")
	total := int64(o.sizeMiB) << 20
	logf("generating %d MiB in %d files", o.sizeMiB, o.files)
	files, err := generate(src, total, o.files, pieceLength)
	if err != nil {
		return err
	}
	mi, err := metadata.Create(filepath.Join(src, contentName), metadata.CreateOptions{PieceLength: pieceLength})
	if err != nil {
		return err
	}
	torrentBytes, err := mi.Marshal()
	if err != nil {
		return err
	}
	mag := mi.Magnet()
	ih := mi.Info.InfoHash
	logf("torrent %s: %d pieces of %d bytes; %s", ih, mi.Info.NumPieces(), mi.Info.PieceLength, mag)

	// Our DHT.
	nodes, err := startDHT(ctx)
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	if err != nil {
		return err
	}
	var boot []netip.AddrPort
	var bootStr []string
	for _, n := range nodes {
		boot = append(boot, n.Addr())
		bootStr = append(bootStr, n.Addr().String())
	}
	logf("%d DHT nodes: %s", len(nodes), strings.Join(bootStr, " "))

	// The anacrolix seeder.
	const seedIP = "127.0.91.1"
	seeder, err := newAnacrolixClient(seedIP, src, true, boot)
	if err != nil {
		return fmt.Errorf("seeder: %w", err)
	}
	defer func() {
		seeder.Close()
		select {
		case <-seeder.Closed():
		case <-time.After(5 * time.Second):
		}
	}()
	ami, err := metainfo.Load(bytes.NewReader(torrentBytes))
	if err != nil {
		return err
	}
	if ami.HashInfoBytes() != metainfo.Hash(ih) {
		return fmt.Errorf("anacrolix hashes our info to %v, we to %v", ami.HashInfoBytes(), ih)
	}
	str, err := seeder.AddTorrent(ami)
	if err != nil {
		return err
	}
	vctx, vcancel := context.WithTimeout(ctx, 120*time.Second)
	err = str.VerifyDataContext(vctx)
	if err == nil {
		err = waitComplete(vctx, str)
	}
	vcancel()
	if err != nil {
		return fmt.Errorf("seeder verifying its data: %w", err)
	}
	seedAddr := netip.AddrPortFrom(netip.MustParseAddr(seedIP), uint16(seeder.LocalPort()))
	logf("seeder %v has verified all %d bytes", seedAddr, str.Info().TotalLength())
	if _, err := peertest.WaitAnnounced(ctx, nodes[dhtNodes-2], ih, seedAddr, 60*time.Second); err != nil {
		return err
	}
	logf("our DHT has the seeder's announce")
	if o.serve {
		logf("serving; try: %s fetch --json --no-seed --listen 127.0.92.200:0 --bootstrap %s --dir DIR '%s'", o.nodeBin, bootStr[0], mag)
		logf("or: %s leech-anacrolix -magnet '%s' -listen 127.0.93.200 -boot %s -dir DIR", self, mag, strings.Join(bootStr, ","))
		<-ctx.Done()
		return nil
	}

	// The runs.
	var all []runResult
	sizeMiB := float64(total) / (1 << 20)
	env := os.Environ()
	for run := 1; run <= o.runs; run++ {
		order := []string{"ours", "anacrolix"}
		if (run%2 == 0) != (o.first == "anacrolix") {
			slices.Reverse(order)
		}
		for _, client := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			dst := filepath.Join(tmp, fmt.Sprintf("run%d-%s", run, client))
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			ipLast := (run-1)%250 + 1
			var res runResult
			switch client {
			case "ours":
				res, err = measure(ctx, client, run, o.limit, sizeMiB, env, launcher, o.nodeBin,
					"fetch", "--json", "--no-seed",
					"--listen", fmt.Sprintf("127.0.92.%d:0", ipLast),
					"--bootstrap", bootStr[(run-1)%len(bootStr)],
					"--dir", dst, "--timeout", "120s", mag)
			case "anacrolix":
				res, err = measure(ctx, client, run, o.limit, sizeMiB, env, launcher, self,
					"leech-anacrolix", "-magnet", mag, "-dir", dst, "-timeout", (o.limit - 5*time.Second).String(),
					"-listen", fmt.Sprintf("127.0.93.%d", ipLast),
					"-boot", strings.Join(bootStr, ","))
			}
			if err != nil {
				return err
			}
			if err := verify(dst, files); err != nil {
				return fmt.Errorf("%s run %d: download differs from the source: %w", client, run, err)
			}
			logf("%-9s run %d: metadata %.2fs  complete %.2fs  exit %.2fs  %.1f MiB/s  cpu %.2fs (user %.2f sys %.2f)  rss %.1f MiB  [verified]",
				client, run, res.Metadata, res.Complete, res.Exited, res.MiBps, res.CPU, res.UserCPU, res.SysCPU, res.MaxRSSMiB)
			all = append(all, res)
			if !o.keep {
				os.RemoveAll(dst)
			}
		}
	}

	rep := report(o, mi, mag, seedAddr, all)
	printTable(os.Stdout, rep)
	logf("total %v", time.Since(began).Round(time.Second))
	if o.jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.jsonPath)
	}
	return nil
}

// launcherSource is cmd/fetchbench/spawn, built on its own (it needs
// nothing but the standard library) wherever this program runs from.
//
//go:embed spawn/main.go
var launcherSource []byte

// buildLauncher builds the launcher into dir/spawn.
func buildLauncher(ctx context.Context, dir string) (string, error) {
	src := filepath.Join(dir, "spawn-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), launcherSource, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module spawn\n\ngo 1.26\n"), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "spawn")
	b := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	b.Dir = src
	b.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		return "", fmt.Errorf("building the launcher: %w", err)
	}
	return out, nil
}

// startDHT starts dhtNodes of our DHT nodes on 127.0.90.1.. that know each
// other. It returns the nodes started even on error, for closing.
func startDHT(ctx context.Context) ([]*dht.Node, error) {
	var nodes []*dht.Node
	var boot []string
	for i := 1; i <= dhtNodes; i++ {
		pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.90.%d:0", i))
		if err != nil {
			return nodes, err
		}
		n, err := dht.New(dht.Config{Conn: pc, Bootstrap: boot})
		if err != nil {
			pc.Close()
			return nodes, err
		}
		nodes = append(nodes, n)
		if boot == nil {
			boot = []string{n.Addr().String()}
		}
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, n := range nodes[1:] {
		if _, err := n.Bootstrap(bctx); err != nil {
			return nodes, fmt.Errorf("DHT bootstrap: %w", err)
		}
	}
	return nodes, nil
}

// summary is one client's medians.
type summary struct {
	Metadata  float64 `json:"metadata_s"`
	Complete  float64 `json:"complete_s"`
	Exited    float64 `json:"exited_s"`
	MiBps     float64 `json:"mib_per_s"`
	DataMiBps float64 `json:"data_mib_s"`
	CPU       float64 `json:"cpu_s"`
	MaxRSSMiB float64 `json:"max_rss_mib"`
}

type results struct {
	SizeMiB     int         `json:"size_mib"`
	Files       int         `json:"files"`
	Runs        int         `json:"runs"`
	PieceLength int64       `json:"piece_length"`
	InfoHash    string      `json:"infohash"`
	Magnet      string      `json:"magnet"`
	Seeder      string      `json:"seeder"`
	GoVersion   string      `json:"go"`
	CPUs        int         `json:"cpus"`
	Date        string      `json:"date"`
	Ours        summary     `json:"ours"`
	Anacrolix   summary     `json:"anacrolix"`
	Ratio       summary     `json:"ratio_ours_over_anacrolix"`
	Raw         []runResult `json:"raw"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(all []runResult, client string) summary {
	var m, c, e, r, dr, cpu, rss []float64
	for _, x := range all {
		if x.Client != client {
			continue
		}
		m, c, e = append(m, x.Metadata), append(c, x.Complete), append(e, x.Exited)
		r, dr = append(r, x.MiBps), append(dr, x.DataMiBps)
		cpu, rss = append(cpu, x.CPU), append(rss, x.MaxRSSMiB)
	}
	return summary{median(m), median(c), median(e), median(r), median(dr), median(cpu), median(rss)}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func report(o options, mi *metadata.MetaInfo, mag string, seed netip.AddrPort, all []runResult) results {
	ours, theirs := summarize(all, "ours"), summarize(all, "anacrolix")
	return results{
		SizeMiB: o.sizeMiB, Files: o.files, Runs: o.runs, PieceLength: mi.Info.PieceLength,
		InfoHash: mi.Info.InfoHash.String(), Magnet: mag, Seeder: seed.String(),
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Date: time.Now().UTC().Format(time.RFC3339),
		Ours: ours, Anacrolix: theirs,
		Ratio: summary{
			Metadata: ratio(ours.Metadata, theirs.Metadata), Complete: ratio(ours.Complete, theirs.Complete),
			Exited: ratio(ours.Exited, theirs.Exited), MiBps: ratio(ours.MiBps, theirs.MiBps),
			DataMiBps: ratio(ours.DataMiBps, theirs.DataMiBps), CPU: ratio(ours.CPU, theirs.CPU),
			MaxRSSMiB: ratio(ours.MaxRSSMiB, theirs.MaxRSSMiB),
		},
		Raw: all,
	}
}

func printTable(w *os.File, r results) {
	title := fmt.Sprintf("fetch %d MiB, %d files, 1 anacrolix seeder, median of %d", r.SizeMiB, r.Files, r.Runs)
	width := max(len(title), 34)
	fmt.Fprintf(w, "%-*s %10s %12s %8s\n", width, title, "ours", "anacrolix", "ratio")
	row := func(name string, a, b, q float64, prec int) {
		fmt.Fprintf(w, "%-*s %10.*f %12.*f %8.2f\n", width, name, prec, a, prec, b, q)
	}
	o, t, q := r.Ours, r.Anacrolix, r.Ratio
	row("time to metadata (s)", o.Metadata, t.Metadata, q.Metadata, 2)
	row("time to complete (s)", o.Complete, t.Complete, q.Complete, 2)
	row("throughput (MiB/s)", o.MiBps, t.MiBps, q.MiBps, 1)
	row("CPU (s)", o.CPU, t.CPU, q.CPU, 2)
	row("peak RSS (MiB)", o.MaxRSSMiB, t.MaxRSSMiB, q.MaxRSSMiB, 1)
	fmt.Fprintf(w, "(times from process start; throughput = size / time to complete; ratio = ours / anacrolix;\n"+
		" after metadata: %.1f vs %.1f MiB/s; process exit at %.2f vs %.2f s)\n", o.DataMiBps, t.DataMiBps, o.Exited, t.Exited)
}
