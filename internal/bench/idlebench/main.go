// Command idlebench measures what an idle node daemon costs: CPU and
// resident memory of a daemon seeding 100 small torrents, with a routing
// table filled from a loopback DHT, while nobody asks it for anything.
// It is a measurement, not a timed test: it prints the figures and
// whether they meet the targets (under 1% of one core, under 64 MiB).
//
// It builds our node binary (or takes -node); writes -torrents
// directories of one pseudo-random file each (-size bytes, 32 KiB
// pieces) and their .torrent files; starts -dht of our DHT nodes (package
// dht, defaults) on 127.72.0.0/15, each on its own /24; starts node
// daemon on 127.71.0.1 bootstrapping from them, adds every torrent
// through the API (the data is in the daemon's --dir, so each checks and
// seeds), waits until all seed, and stops it with SIGTERM. Then it starts
// the daemon again on the same state directory, as after a reboot, waits
// until all seed again and -warmup has passed (the first announces of
// every torrent, the table's first refreshes), and samples the process's
// /proc/PID/stat every second for -sample: CPU (utime+stime) over the
// window and RSS, the peak and the last. The routing table's size is read
// from the API at the end.
//
// With -profile FILE the measured daemon writes a CPU profile of its
// whole second run there (NODE_CPUPROFILE): checks and announces
// included, so read it with the idle window in mind.
//
// Everything runs on loopback: nothing contacts any other address, and
// port mapping and trackers are off.
//
// Usage:
//
//	go run ./internal/bench/idlebench [-node bin/node] [-torrents 100] [-dht 300] [-sample 60s] [-warmup 30s] [-json out.json] [-profile cpu.out] [-keep]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"node/cmd/node/api"
	"node/dht"
	"node/internal/bench/benchkit"
)

// Targets (issue: an idle daemon with 100 seeded torrents and a full
// routing table).
const (
	targetCPUPercent = 1.0
	targetRSSMiB     = 64.0
	// clkTck is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
	// every Linux architecture Go runs on.
	clkTck   = 100
	pieceLen = 32 << 10
)

type result struct {
	Torrents     int     `json:"torrents"`
	DHTNodes     int     `json:"dht_nodes"`
	TableNodes   int     `json:"table_nodes"`
	TableGood    int     `json:"table_good"`
	SampleSecs   float64 `json:"sample_seconds"`
	CPUSecs      float64 `json:"cpu_seconds"`
	CPUPercent   float64 `json:"cpu_percent_of_one_core"`
	RSSPeakMiB   float64 `json:"rss_peak_mib"`
	RSSLastMiB   float64 `json:"rss_last_mib"`
	CPUTargetMet bool    `json:"cpu_target_met"`
	RSSTargetMet bool    `json:"rss_target_met"`
}

func main() {
	nodeBin := flag.String("node", "", "our node binary (default: go build node/cmd/node)")
	torrents := flag.Int("torrents", 100, "torrents the daemon seeds")
	size := flag.Int("size", 96<<10, "bytes of each torrent's one file")
	dhtNodes := flag.Int("dht", 300, "loopback DHT nodes")
	sample := flag.Duration("sample", 60*time.Second, "the measured idle window")
	warmup := flag.Duration("warmup", 30*time.Second, "idle time before the window")
	jsonOut := flag.String("json", "", "write the figures as JSON to this file")
	profile := flag.String("profile", "", "CPU profile of the measured daemon's run (NODE_CPUPROFILE)")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	flag.Parse()
	if err := run(*nodeBin, *torrents, *size, *dhtNodes, *sample, *warmup, *jsonOut, *profile, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "idlebench:", err)
		os.Exit(1)
	}
}

func run(nodeBin string, n, size, dhtCount int, sample, warmup time.Duration, jsonOut, profile string, keep bool) error {
	if n < 1 || n > 2000 || dhtCount < 1 || dhtCount > 500 || size < 1 {
		return errors.New("-torrents 1..2000, -dht 1..500, -size > 0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmup+sample+10*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "idlebench")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	bin, err := benchkit.NodeBinary(ctx, tmp, nodeBin, "idlebench")
	if err != nil {
		return err
	}
	if profile != "" {
		if profile, err = filepath.Abs(profile); err != nil {
			return err
		}
	}
	data, state := filepath.Join(tmp, "data"), filepath.Join(tmp, "state")
	var torrents [][]byte
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, size)
	for i := range n {
		name := fmt.Sprintf("t%03d", i)
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		if err := os.MkdirAll(filepath.Join(data, name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(data, name, "f.bin"), buf, 0o644); err != nil {
			return err
		}
		_, b, err := benchkit.CreateTorrent(data, name, pieceLen)
		if err != nil {
			return err
		}
		torrents = append(torrents, b)
	}

	nodes, err := benchkit.StartDHT(ctx, dhtCount, func(i int) string {
		return fmt.Sprintf("127.%d.%d.1", 72+i/256, i%256)
	}, dht.Config{})
	defer func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}()
	if err != nil {
		return err
	}
	boot := nodes[0].Addr().String()
	args := []string{"daemon", "--no-port-mapping", "--no-trackers", "--state-dir", state, "--api", "127.0.0.1:0",
		"--listen", "127.71.0.1:0", "--bootstrap", boot, "--dir", data, "--log-level", "warn"}

	// First run: add the torrents and let them check.
	d, err := startDaemon(ctx, bin, state, args, "")
	if err != nil {
		return err
	}
	for _, b := range torrents {
		if _, err := d.cl.Add(ctx, api.AddRequest{Torrent: b}); err != nil {
			d.kill()
			return fmt.Errorf("add: %w", err)
		}
	}
	if err := d.waitSeeding(ctx, n); err != nil {
		d.kill()
		return err
	}
	if err := d.stop(); err != nil {
		return err
	}

	// The measured run, as after a restart.
	d, err = startDaemon(ctx, bin, state, args, profile)
	if err != nil {
		return err
	}
	defer d.kill()
	if err := d.waitSeeding(ctx, n); err != nil {
		return err
	}
	fmt.Printf("%d torrents seeding; idle for %v, then sampling for %v\n", n, warmup, sample)
	time.Sleep(warmup)
	res := result{Torrents: n, DHTNodes: dhtCount, SampleSecs: sample.Seconds()}
	cpu0, rss, err := procStat(d.cmd.Process.Pid)
	if err != nil {
		return err
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	var cpu1 int64
	for time.Since(start) < sample {
		<-tick.C
		var err error
		if cpu1, rss, err = procStat(d.cmd.Process.Pid); err != nil {
			return err
		}
		res.RSSPeakMiB = max(res.RSSPeakMiB, mib(rss))
	}
	tick.Stop()
	secs := time.Since(start).Seconds()
	res.SampleSecs = secs
	res.RSSLastMiB = mib(rss)
	res.CPUSecs = float64(cpu1-cpu0) / clkTck
	res.CPUPercent = 100 * res.CPUSecs / secs
	if st, err := d.cl.DHT(ctx); err == nil {
		res.TableNodes, res.TableGood = st.Nodes, st.Good
	}
	res.CPUTargetMet = res.CPUPercent < targetCPUPercent
	res.RSSTargetMet = res.RSSPeakMiB < targetRSSMiB
	if err := d.stop(); err != nil {
		return err
	}
	fmt.Printf("idle node daemon, %d torrents seeding, routing table %d nodes (%d good) of a %d-node loopback DHT, over %.0f s:\n",
		n, res.TableNodes, res.TableGood, dhtCount, secs)
	fmt.Printf("  CPU  %.3f s = %.2f%% of one core (target < %.0f%%: %s)\n", res.CPUSecs, res.CPUPercent, targetCPUPercent, met(res.CPUTargetMet))
	fmt.Printf("  RSS  peak %.1f MiB, last %.1f MiB (target < %.0f MiB: %s)\n", res.RSSPeakMiB, res.RSSLastMiB, targetRSSMiB, met(res.RSSTargetMet))
	if jsonOut != "" {
		return benchkit.WriteJSON(jsonOut, res)
	}
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// procStat is a process's CPU time (utime+stime, in clock ticks) and
// resident set in bytes, from /proc/PID/stat.
func procStat(pid int) (int64, int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted start after its closing one, at field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return 0, 0, errors.New("/proc stat: too few fields")
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	// utime 14, stime 15, rss 24 (pages).
	return num(14) + num(15), num(24) * int64(os.Getpagesize()), nil
}

// daemon is a node daemon process and its API client.
type daemon struct {
	cmd    *exec.Cmd
	cl     *api.Client
	stderr *benchkit.Tail
	exited chan error
}

func startDaemon(ctx context.Context, bin, state string, args []string, profile string) (*daemon, error) {
	os.Remove(filepath.Join(state, api.AddrFile)) // a run killed leaves it
	d := &daemon{stderr: &benchkit.Tail{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stderr = d.stderr
	d.cmd.Env = os.Environ()
	if profile != "" {
		d.cmd.Env = append(d.cmd.Env, "NODE_CPUPROFILE="+profile)
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.exited <- d.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		addr, err := api.ReadAddr(state)
		if err == nil {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				tok, err := api.ReadToken(filepath.Join(state, api.TokenFile))
				if err != nil {
					d.kill()
					return nil, err
				}
				d.cl = api.NewClient(addr, tok)
				return d, nil
			}
		}
		select {
		case err := <-d.exited:
			d.exited <- err
			return nil, fmt.Errorf("node daemon exited: %v\n%s", err, d.stderr.String())
		case <-ctx.Done():
			d.kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.kill()
			return nil, fmt.Errorf("node daemon did not write its API address\n%s", d.stderr.String())
		}
	}
}

// waitSeeding waits until n torrents seed.
func (d *daemon) waitSeeding(ctx context.Context, n int) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ts, err := d.cl.List(ctx)
		seeding := 0
		for _, t := range ts {
			if t.State == api.StateSeeding {
				seeding++
			}
		}
		if err == nil && seeding == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d torrents seeding after 3 minutes (%v)\n%s", seeding, n, err, d.stderr.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stop ends the daemon with SIGTERM, as a service manager does.
func (d *daemon) stop() error {
	d.cl.Close()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.exited <- err
		if err != nil {
			return fmt.Errorf("node daemon after SIGTERM: %v\n%s", err, d.stderr.String())
		}
		return nil
	case <-time.After(60 * time.Second):
		d.kill()
		return errors.New("node daemon did not stop within 60 s of SIGTERM")
	}
}

// kill ends the daemon, that PID only, if it still runs.
func (d *daemon) kill() {
	select {
	case err := <-d.exited:
		d.exited <- err
	default:
		_ = d.cmd.Process.Kill()
		d.exited <- <-d.exited
	}
}
