// Command idlebench measures what an idle node daemon costs: CPU and
// resident memory of a daemon seeding 100 small torrents, with a full
// routing table learnt from a loopback DHT, while nobody asks it for
// anything.
// It is a measurement, not a timed test: it prints the figures and
// whether they meet the targets (under 1% of one core, under 64 MiB).
//
// It builds our node binary (or takes -node); writes -torrents
// directories of one pseudo-random file each (-size bytes, 32 KiB
// pieces) and their .torrent files; starts -dht of our DHT nodes (package
// dht, defaults) on 127.72.0.0/15, each on its own /24. A loopback DHT of
// a few hundred nodes fills only the daemon's first few buckets, where a
// node on the public DHT, among millions, fills some twenty: so the
// daemon's ID is chosen (written to its state directory's dht.dat before
// its first run) and -fill more nodes are started for each of its first
// -depth buckets, with IDs sharing exactly that bucket's depth of leading
// bits with it, each on its own /24 from 127.74.0.0 up; they join
// first, the random ones after them. The daemon is not told of them: it
// learns them as any node does, from its bootstrap's lookups (its own ID,
// then one into each bucket short of K).
//
// It starts node daemon on 127.71.0.1 bootstrapping from the first DHT
// node, adds every torrent through the API (the data is in the daemon's
// --dir, so each checks and seeds), waits until all seed, and stops it
// with SIGTERM. Then it starts the daemon again on the same state
// directory, as after a reboot, waits until all seed again and -warmup
// has passed (its bootstrap, the first announces of every torrent),
// and samples the process's /proc/PID/stat every second for
// -sample: CPU (utime+stime) over the window and RSS, the peak and the
// last. The routing table (nodes, good ones, buckets, full buckets) and
// the DHT queries the daemon sent during the window are read from the
// API.
//
// A window of minutes sees no bucket refresh and no ping of a
// questionable node: both come after 15 quiet minutes (about a lookup
// per bucket and a ping per node every 15 minutes, some 500 queries, on
// a table this size). The queries the daemon sent during the window are
// printed, so that a window that did hold some is seen as such.
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
//	go run ./internal/bench/idlebench [-node bin/node] [-torrents 100] [-dht 300] [-depth 22] [-fill 16] [-sample 60s] [-warmup 30s] [-json out.json] [-profile cpu.out] [-keep]
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
	"node/routing"
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
	Torrents     int `json:"torrents"`
	DHTNodes     int `json:"dht_nodes"`
	FillNodes    int `json:"fill_nodes"`
	TableNodes   int `json:"table_nodes"`
	TableGood    int `json:"table_good"`
	TableBuckets int `json:"table_buckets"`
	FullBuckets  int `json:"full_buckets"`
	// QueriesOut is what the daemon's DHT sent during the window, by
	// method.
	QueriesOut   map[string]uint64 `json:"queries_out"`
	SampleSecs   float64           `json:"sample_seconds"`
	CPUSecs      float64           `json:"cpu_seconds"`
	CPUPercent   float64           `json:"cpu_percent_of_one_core"`
	RSSPeakMiB   float64           `json:"rss_peak_mib"`
	RSSLastMiB   float64           `json:"rss_last_mib"`
	CPUTargetMet bool              `json:"cpu_target_met"`
	RSSTargetMet bool              `json:"rss_target_met"`
}

func main() {
	nodeBin := flag.String("node", "", "our node binary (default: go build node/cmd/node)")
	torrents := flag.Int("torrents", 100, "torrents the daemon seeds")
	size := flag.Int("size", 96<<10, "bytes of each torrent's one file")
	dhtNodes := flag.Int("dht", 300, "loopback DHT nodes with random IDs")
	depth := flag.Int("depth", 22, "the daemon's buckets given nodes of their own: those of depth 0 to depth-1")
	fill := flag.Int("fill", 16, "nodes started for each of those buckets (K in it, the rest for its replacement cache)")
	sample := flag.Duration("sample", 60*time.Second, "the measured idle window")
	warmup := flag.Duration("warmup", 30*time.Second, "idle time before the window")
	jsonOut := flag.String("json", "", "write the figures as JSON to this file")
	profile := flag.String("profile", "", "CPU profile of the measured daemon's run (NODE_CPUPROFILE)")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	flag.Parse()
	if err := run(*nodeBin, *torrents, *size, *dhtNodes, *depth, *fill, *sample, *warmup, *jsonOut, *profile, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "idlebench:", err)
		os.Exit(1)
	}
}

func run(nodeBin string, n, size, dhtCount, depth, fill int, sample, warmup time.Duration, jsonOut, profile string, keep bool) error {
	if n < 1 || n > 2000 || dhtCount < 1 || dhtCount > 500 || size < 1 || depth < 0 || depth > 40 || fill < 0 || fill > 64 {
		return errors.New("-torrents 1..2000, -dht 1..500, -size > 0, -depth 0..40, -fill 0..64")
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

	// The daemon's ID, saved where its DHT node looks for it, so that
	// the fill nodes can be placed in its buckets.
	self := routing.RandomID(r)
	st, err := dht.EncodeState(self, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(state, "dht.dat"), st, 0o600); err != nil {
		return err
	}
	fillIDs := make([]routing.ID, 0, depth*fill)
	for d := range depth {
		for range fill {
			fillIDs = append(fillIDs, idAtDepth(self, d, r))
		}
	}
	total := dhtCount + len(fillIDs)
	fmt.Printf("starting %d loopback DHT nodes (%d random, %d in the daemon's first %d buckets)\n", total, dhtCount, len(fillIDs), depth)
	// The fill nodes join first: a node whose bucket is full of good
	// nodes keeps newcomers as replacements only, so random nodes that
	// had filled their tables among themselves would never hand out the
	// fill nodes, and nothing would lead the daemon to them.
	nf := len(fillIDs)
	nodes, err := benchkit.StartDHTConfigs(ctx, total, func(i int) string {
		if i <= nf {
			return fmt.Sprintf("127.%d.%d.1", 74+i/256, i%256)
		}
		j := i - nf
		return fmt.Sprintf("127.%d.%d.1", 72+j/256, j%256)
	}, func(i int) dht.Config {
		if i <= nf {
			return dht.Config{ID: fillIDs[i-1]}
		}
		return dht.Config{}
	}, 16)
	defer func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}()
	if err != nil {
		return err
	}
	boot := nodes[0].Addr().String()
	// One port for both runs, as a service keeps: the nodes that knew
	// the daemon know it at that address.
	port, err := freePort("127.71.0.1")
	if err != nil {
		return err
	}
	args := []string{"daemon", "--no-port-mapping", "--no-trackers", "--state-dir", state, "--api", "127.0.0.1:0",
		"--listen", net.JoinHostPort("127.71.0.1", strconv.Itoa(port)), "--bootstrap", boot, "--dir", data, "--log-level", "warn"}

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
	if st, err := d.cl.DHT(ctx); err == nil {
		fmt.Printf("first run: routing table %d nodes in %d buckets\n", st.Nodes, len(st.Buckets))
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
	res := result{Torrents: n, DHTNodes: dhtCount, FillNodes: len(fillIDs), SampleSecs: sample.Seconds()}
	st0, err := d.cl.DHT(ctx)
	if err != nil {
		return err
	}
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
	st1, err := d.cl.DHT(ctx)
	if err != nil {
		return err
	}
	res.TableNodes, res.TableGood, res.TableBuckets = st1.Nodes, st1.Good, len(st1.Buckets)
	for _, b := range st1.Buckets {
		if len(b.Nodes) >= routing.K {
			res.FullBuckets++
		}
	}
	res.QueriesOut = make(map[string]uint64)
	var queries uint64
	for m, v := range st1.QueriesOut {
		if dv := v - st0.QueriesOut[m]; dv > 0 {
			res.QueriesOut[m] = dv
			queries += dv
		}
	}
	res.CPUTargetMet = res.CPUPercent < targetCPUPercent
	res.RSSTargetMet = res.RSSPeakMiB < targetRSSMiB
	if err := d.stop(); err != nil {
		return err
	}
	fmt.Printf("idle node daemon, %d torrents seeding, routing table %d nodes (%d good) in %d buckets (%d full) of a %d-node loopback DHT, over %.0f s:\n",
		n, res.TableNodes, res.TableGood, res.TableBuckets, res.FullBuckets, total, secs)
	fmt.Printf("  DHT  %d queries sent in the window %v\n", queries, res.QueriesOut)
	fmt.Printf("  CPU  %.3f s = %.2f%% of one core (target < %.0f%%: %s)\n", res.CPUSecs, res.CPUPercent, targetCPUPercent, met(res.CPUTargetMet))
	fmt.Printf("  RSS  peak %.1f MiB, last %.1f MiB (target < %.0f MiB: %s)\n", res.RSSPeakMiB, res.RSSLastMiB, targetRSSMiB, met(res.RSSTargetMet))
	if jsonOut != "" {
		return benchkit.WriteJSON(jsonOut, res)
	}
	return nil
}

// idAtDepth is a random ID sharing exactly d leading bits with self: one
// that falls in self's bucket of depth d.
func idAtDepth(self routing.ID, d int, r *rand.Rand) routing.ID {
	id := routing.RandomID(r)
	for i := range d {
		bit := byte(0x80) >> (i % 8)
		id[i/8] = id[i/8]&^bit | self[i/8]&bit
	}
	bit := byte(0x80) >> (d % 8)
	id[d/8] = id[d/8]&^bit | ^self[d/8]&bit
	return id
}

// freePort is a port free for both TCP and UDP on ip, as the daemon's
// --listen needs, at the time of asking.
func freePort(ip string) (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP")
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
