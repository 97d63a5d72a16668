// Command dhtbench measures KRPC serving and DHT memory, ours against
// anacrolix/dht/v2, out of process and on loopback only:
//
//	go run ./internal/bench/dhtbench -json out.json
//
// Serving: the server under test runs as its own process — ours is the
// real `node dht` binary (built into a temporary directory) with the
// per-IP rate limit and the send budget off (--rate-per-ip 0 --send-rate
// 0; a load generator on a few addresses would otherwise be throttled, and
// anacrolix runs unlimited too) and the amplification bound left at its
// default; anacrolix's is a dht.Server with unlimited send rate in a child
// mode of this program. Another child process holds a network of fake
// nodes on 127.100.x.y (they answer ping, find_node and get_peers, and
// each pings the server once, so its table fills as far as such a network
// allows) and the load generator, which keeps a window of queries
// outstanding from several 127.0.101.x sources for a fixed time. The
// server's CPU (user+sys, /proc/PID/stat) is read around each load run.
//
// Memory: heap per routing-table entry and per stored peer, measured in
// this process; peak RSS (VmHWM) of each server process once its table is
// full.
//
// Addresses: servers on 127.0.100.x, load sources 127.0.101.x, announcers
// 127.0.102.x and 127.0.103.x, fake nodes 127.100.0.0/16.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"node/internal/bench/benchfmt"
)

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "gen":
			err = runGen()
		case "anacrolix-server":
			err = runAnacrolixServer(os.Args[2], os.Args[3])
		default:
			err = run(os.Args[1:])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dhtbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(nil); err != nil {
		fmt.Fprintln(os.Stderr, "dhtbench:", err)
		os.Exit(1)
	}
}

type options struct {
	jsonOut  string
	fakes    int
	duration time.Duration
	sources  int
	window   int
	ihs      int
	withVals int
	fillMax  time.Duration
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("dhtbench", flag.ContinueOnError)
	fs.StringVar(&o.jsonOut, "json", "", "write the figures to this `file` (shared bench schema)")
	fs.IntVar(&o.fakes, "fakes", 1500, "fake nodes with random IDs; as many again are crafted around each server's ID")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each load run")
	fs.IntVar(&o.sources, "sources", 8, "load generator source addresses")
	fs.IntVar(&o.window, "window", 64, "queries outstanding")
	fs.IntVar(&o.ihs, "infohashes", 64, "get_peers info-hashes")
	fs.IntVar(&o.withVals, "with-values", 8, "info-hashes that get 4 stored peers")
	fs.DurationVar(&o.fillMax, "fill", 20*time.Second, "longest wait for a table to fill")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	tmp, err := os.MkdirTemp("", "dhtbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	nodeBin := filepath.Join(tmp, "node")
	build := exec.CommandContext(ctx, "go", "build", "-o", nodeBin, "./cmd/node")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building node: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	gen, err := startGen(ctx, self)
	if err != nil {
		return err
	}
	defer gen.stop()
	var fk struct{ Fakes int }
	if err := gen.do(&fk, "fakes %d", o.fakes); err != nil {
		return err
	}
	boot := fakeAddr(0).String()

	servers := []*serverRun{
		{impl: "ours", addr: "127.0.100.1:6881", cmd: []string{nodeBin, "dht", "--no-port-mapping", "--state-dir=", "--listen", "127.0.100.1:6881", "--bootstrap", boot,
			"--rate-per-ip", "0", "--send-rate", "0", "--status-interval", "1s", "--log-json"}},
		{impl: "anacrolix", addr: "127.0.100.2:6881", cmd: []string{self, "anacrolix-server", "127.0.100.2:6881", boot}},
	}
	for _, s := range servers {
		if err := s.measure(ctx, gen, o); err != nil {
			return fmt.Errorf("%s: %w", s.impl, err)
		}
	}

	tOurs, tTheirs, tOursN, tTheirsN, err := tableMemory()
	if err != nil {
		return fmt.Errorf("table memory: %w", err)
	}
	pOurs, pTheirs, pOursN, pTheirsN, err := peerMemory(200, 100)
	if err != nil {
		return fmt.Errorf("peer memory: %w", err)
	}

	ours, theirs := servers[0], servers[1]
	serving := benchfmt.Section{Name: "KRPC serving, out-of-process load", Notes: []string{
		fmt.Sprintf("server in its own process; load generator in another, %d sources on 127.0.101.x, %d queries outstanding, %v per run", o.sources, o.window, o.duration),
		"ours: node dht --rate-per-ip 0 --send-rate 0 (amplification bound at its default); anacrolix: dht.Server, unlimited send rate",
		fmt.Sprintf("tables filled from %d fake nodes with random IDs and %d crafted around each server's ID (K per shared-prefix length) on 127.100.x.y; each pings the server once: ours held %d nodes, anacrolix %d", o.fakes, ours.crafted, ours.tableSize, theirs.tableSize),
		fmt.Sprintf("get_peers over %d info-hashes, %d with 4 stored peers: %.0f%% of ours' answers and %.0f%% of anacrolix's carried values",
			o.ihs, o.withVals, 100*ours.getPeers.valuesFrac(), 100*theirs.getPeers.valuesFrac()),
		"server CPU is user+sys from /proc/PID/stat over each run",
	}}
	gpRatio := ours.getPeers.perCPUSecond() / theirs.getPeers.perCPUSecond()
	serving.Rows = []benchfmt.Row{
		{Metric: "get_peers answered", Unit: "queries/s", Ours: ours.getPeers.rate(), Anacrolix: ptr(theirs.getPeers.rate()), Better: "higher"},
		{Metric: "get_peers server CPU per 10k answered", Unit: "ms", Ours: ours.getPeers.cpuPer10k(), Anacrolix: ptr(theirs.getPeers.cpuPer10k()), Better: "lower"},
		{Metric: "get_peers answered per CPU-second", Unit: "queries", Ours: ours.getPeers.perCPUSecond(), Anacrolix: ptr(theirs.getPeers.perCPUSecond()), Better: "higher",
			Target: ">= 2x", Met: ptr(gpRatio >= 2)},
		{Metric: "ping answered", Unit: "queries/s", Ours: ours.ping.rate(), Anacrolix: ptr(theirs.ping.rate()), Better: "higher"},
		{Metric: "ping server CPU per 10k answered", Unit: "ms", Ours: ours.ping.cpuPer10k(), Anacrolix: ptr(theirs.ping.cpuPer10k()), Better: "lower"},
		{Metric: "ping answered per CPU-second", Unit: "queries", Ours: ours.ping.perCPUSecond(), Anacrolix: ptr(theirs.ping.perCPUSecond()), Better: "higher"},
	}
	memory := benchfmt.Section{Name: "Memory", Notes: []string{
		fmt.Sprintf("heap per table entry: live heap (after GC) over filling every bucket; ours routing.Table with the node's configuration (%d entries), anacrolix a dht.Server's table via AddNode (%d entries)", tOursN, tTheirsN),
		fmt.Sprintf("heap per stored peer: ours %d peers announced to a node over loopback; anacrolix %d peers in its shipped peer_store.InMemory (distinct IPs: it keys peers by IP)", pOursN, pTheirsN),
		fmt.Sprintf("peak RSS: VmHWM of the server process once its table is full (ours %d nodes, anacrolix %d), before the load runs", ours.tableSize, theirs.tableSize),
	}}
	memory.Rows = []benchfmt.Row{
		{Metric: "heap per routing-table entry", Unit: "B", Ours: tOurs, Anacrolix: ptr(tTheirs), Better: "lower"},
		{Metric: "heap per stored peer", Unit: "B", Ours: pOurs, Anacrolix: ptr(pTheirs), Better: "lower"},
		{Metric: "peak RSS, DHT node with a full table", Unit: "MiB", Ours: ours.peakRSS, Anacrolix: ptr(theirs.peakRSS), Better: "lower"},
		{Metric: "routing-table entries held", Unit: "nodes", Ours: float64(ours.tableSize), Anacrolix: ptr(float64(theirs.tableSize)), Better: "higher"},
	}
	doc := benchfmt.File{Sections: []benchfmt.Section{serving, memory}}
	printTable(os.Stdout, doc)
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func printTable(w io.Writer, d benchfmt.File) {
	for _, s := range d.Sections {
		fmt.Fprintf(w, "\n%s\n", s.Name)
		fmt.Fprintf(w, "  %-42s %14s %14s %8s  %s\n", "metric", "ours", "anacrolix", "ratio", "target")
		for _, r := range s.Rows {
			an, ratio := "-", "-"
			if r.Anacrolix != nil {
				an = strconv.FormatFloat(*r.Anacrolix, 'f', 1, 64)
				if *r.Anacrolix != 0 {
					ratio = strconv.FormatFloat(r.Ours / *r.Anacrolix, 'f', 2, 64) + "x"
				}
			}
			target := r.Target
			if r.Met != nil {
				target += map[bool]string{true: " met", false: " MISSED"}[*r.Met]
			}
			fmt.Fprintf(w, "  %-42s %14.1f %14s %8s  %s\n", r.Metric+" ("+r.Unit+")", r.Ours, an, ratio, target)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
}

// genProc is the generator child, driven one command a line.
type genProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startGen(ctx context.Context, self string) (*genProc, error) {
	cmd := exec.CommandContext(ctx, self, "gen")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &genProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}, nil
}

func (g *genProc) do(v any, format string, args ...any) error {
	if _, err := fmt.Fprintf(g.in, format+"\n", args...); err != nil {
		return err
	}
	if !g.out.Scan() {
		return fmt.Errorf("generator exited: %v", g.out.Err())
	}
	var e struct{ Error string }
	if json.Unmarshal(g.out.Bytes(), &e) == nil && e.Error != "" {
		return errors.New("generator: " + e.Error)
	}
	return json.Unmarshal(g.out.Bytes(), v)
}

func (g *genProc) stop() {
	fmt.Fprintln(g.in, "quit")
	g.in.Close()
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-done
	}
}

// loadFigures are one load run's results with the server's CPU.
type loadFigures struct {
	loadResult
	cpu float64 // server seconds
}

func (f loadFigures) rate() float64 { return float64(f.Answered) / f.Seconds }
func (f loadFigures) cpuPer10k() float64 {
	return f.cpu * 1e3 / float64(f.Answered) * 1e4
}
func (f loadFigures) perCPUSecond() float64 { return float64(f.Answered) / f.cpu }
func (f loadFigures) valuesFrac() float64 {
	if f.Answered == 0 {
		return 0
	}
	return float64(f.WithValues) / float64(f.Answered)
}

// serverRun is one server under test and what was measured of it.
type serverRun struct {
	impl, addr string
	cmd        []string

	tableSize      int
	crafted        int
	peakRSS        float64 // MiB
	getPeers, ping loadFigures
}

func (s *serverRun) measure(ctx context.Context, gen *genProc, o options) error {
	cmd := exec.CommandContext(ctx, s.cmd[0], s.cmd[1:]...)
	// Table sizes: ours logs JSON status lines on stderr, anacrolix's
	// child prints {"nodes": N} on stdout.
	var pipe io.ReadCloser
	var err error
	if s.impl == "ours" {
		pipe, err = cmd.StderrPipe()
	} else {
		cmd.Stderr = os.Stderr
		pipe, err = cmd.StdoutPipe()
	}
	if err != nil {
		return err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	defer func() {
		stdin.Close() // stops the anacrolix child
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	sizes := make(chan int, 64)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			var st struct {
				Msg   string `json:"msg"`
				Nodes *int   `json:"nodes"`
			}
			if json.Unmarshal(sc.Bytes(), &st) == nil && st.Nodes != nil && (s.impl != "ours" || st.Msg == "status") {
				select {
				case sizes <- *st.Nodes:
				default:
				}
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // the socket is bound
	var pong struct{ Answered, Crafted int }
	if err := gen.do(&pong, "ping %s", s.addr); err != nil {
		return err
	}
	// Full: no growth for 3 s, or o.fillMax.
	fillEnd := time.Now().Add(o.fillMax)
	last, stable := -1, 0
	for time.Now().Before(fillEnd) && stable < 3 {
		select {
		case n := <-sizes:
			if n == last {
				stable++
			} else {
				last, stable = n, 0
			}
		case <-time.After(3 * time.Second):
			return errors.New("no table size reported")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.tableSize = last
	if s.peakRSS, err = vmHWM(pid); err != nil {
		return err
	}
	s.crafted = pong.Crafted
	fmt.Fprintf(os.Stderr, "dhtbench: %s: %d fakes answered its pings' senders, table %d nodes, peak RSS %.1f MiB\n", s.impl, pong.Answered, last, s.peakRSS)

	var ok struct{ OK bool }
	if err := gen.do(&ok, "announce %s %d %d %d", s.addr, o.ihs, o.withVals, 4); err != nil {
		return err
	}
	for _, m := range []struct {
		method string
		into   *loadFigures
	}{{"get_peers", &s.getPeers}, {"ping", &s.ping}} {
		c0, err := procCPU(pid)
		if err != nil {
			return err
		}
		if err := gen.do(&m.into.loadResult, "load %s %s %d %d %d %g", s.addr, m.method, o.ihs, o.sources, o.window, o.duration.Seconds()); err != nil {
			return err
		}
		c1, err := procCPU(pid)
		if err != nil {
			return err
		}
		m.into.cpu = c1 - c0
		fmt.Fprintf(os.Stderr, "dhtbench: %s %s: %d answered in %.1fs (%d lost), server CPU %.2fs\n",
			s.impl, m.method, m.into.Answered, m.into.Seconds, m.into.Lost, m.into.cpu)
		if m.into.Answered == 0 || m.into.cpu <= 0 {
			return fmt.Errorf("%s load: nothing measured", m.method)
		}
	}
	return nil
}

// procCPU is a process's user+sys CPU seconds so far.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are fields 14 and 15 of the line.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const hz = 100 // USER_HZ on Linux
	return (ut + st) / hz, nil
}

// vmHWM is a process's peak resident set in MiB.
func vmHWM(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmHWM")
}
