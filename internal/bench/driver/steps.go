package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"node/internal/bench/benchfmt"
)

// globalDeadline bounds the whole of make bench to under 10 minutes
// (the rest is for compiling bench itself and the margin).
const globalDeadline = 9*time.Minute + 30*time.Second

// decodeBenchPattern selects the decode+handle+encode benchmarks of one
// query in ./dht (dht/serve_bench_test.go), ours and anacrolix's.
const decodeBenchPattern = "ServeQuery"

// defaultSteps are make bench's steps, run in this order. In a command or
// an environment entry, {go} is the go command and {json} the absolute
// path of the JSON file the command must write. Each package of a go test
// step is its own command, with its own file, because each package's test
// binary writes NODE_BENCH_JSON on its own.
var defaultSteps = []step{
	// The fetches took about 3 minutes; utp and rc4 (one run each) add
	// about a minute.
	{name: "fetch", limit: 5 * time.Minute, cmds: []stepCmd{
		{argv: []string{"{go}", "run", "./internal/bench/fetchbench", "-json", "{json}"}},
	}},
	{name: "lookup", limit: 4*time.Minute + 30*time.Second, cmds: []stepCmd{
		{argv: []string{"{go}", "test", "-run", "^$", "-bench", "Lookup1000", "-benchtime", "9x", "-timeout", "8m", "./dht"},
			env: []string{"NODE_BENCH_JSON={json}"}},
	}},
	{name: "serve", limit: 2 * time.Minute, cmds: []stepCmd{
		{argv: []string{"{go}", "run", "./internal/bench/dhtbench", "-json", "{json}"}},
	}},
	{name: "decode", limit: 2 * time.Minute, cmds: []stepCmd{
		{argv: []string{"{go}", "test", "-run", "^$", "-bench", decodeBenchPattern, "-benchmem", "-timeout", "3m", "./dht"},
			env: []string{"NODE_BENCH_JSON={json}"}},
	}},
	// The hostile-swarm soak: it stops itself at 3m20s, builds
	// included; the limit leaves go run's compiling on top.
	{name: "soak", limit: 4 * time.Minute, cmds: []stepCmd{
		{argv: []string{"{go}", "run", "./internal/bench/soakbench", "-json", "{json}"}},
	}},
	// make sim's quick subset: 1,000 simulated nodes of each, no attack.
	{name: "sim", limit: 90 * time.Second, cmds: []stepCmd{
		{argv: []string{"{go}", "run", "./internal/bench/simbench", "-quick", "-json", "{json}"}},
	}},
	// node peers from a cold start against anacrolix's own lookup: 500
	// anacrolix servers, 50 ms round trips, 9 fresh processes of each;
	// about 40 s with the builds cached, and coldbench stops itself at
	// its -budget.
	{name: "cold", limit: 2 * time.Minute, cmds: []stepCmd{
		{argv: []string{"{go}", "run", "./internal/bench/coldbench", "-go", "{go}", "-budget", "110s", "-json", "{json}"}},
	}},
}

// step is one benchmark of make bench: commands run one after the other
// within limit (and within the global deadline).
type step struct {
	name  string
	limit time.Duration
	cmds  []stepCmd
}

type stepCmd struct {
	argv []string
	env  []string // added to bench's own environment
}

// stepResult is what a step did and the sections it wrote.
type stepResult struct {
	Name     string             `json:"name"`
	Skipped  bool               `json:"skipped,omitempty"`
	OK       bool               `json:"ok"`
	Seconds  float64            `json:"seconds"`
	Limit    float64            `json:"limit_s"`
	Error    string             `json:"error,omitempty"`
	Tail     []string           `json:"output_tail,omitempty"` // the last lines of its output, when it failed
	Warnings []string           `json:"warnings,omitempty"`
	Commands []string           `json:"commands"`
	Sections []benchfmt.Section `json:"-"`
}

// runner runs steps, one at a time.
type runner struct {
	dir     string        // each command's JSON file and output log go here
	root    string        // the commands run here (the module's root); "" for bench's own directory
	goCmd   string        // replaces {go}
	grace   time.Duration // between SIGTERM and SIGKILL when a step runs out of time
	verbose bool          // copy the steps' output to log
	log     io.Writer     // progress lines
}

// minStepTime is the least time left before the global deadline worth
// starting a step with (unless the step's own limit is shorter).
const minStepTime = 15 * time.Second

func (r *runner) runAll(ctx context.Context, steps []step, skip map[string]bool) []stepResult {
	var out []stepResult
	for i, s := range steps {
		if skip[s.name] {
			out = append(out, stepResult{Name: s.name, Skipped: true, OK: true})
			fmt.Fprintf(r.log, "bench: %s skipped\n", s.name)
			continue
		}
		limit := s.limit
		left := limit
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
			limit = min(limit, left)
		}
		if ctx.Err() != nil || left < min(s.limit, minStepTime) {
			why := "not run: the global deadline is too close"
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why = "not run: interrupted"
			}
			out = append(out, stepResult{Name: s.name, Error: why, Commands: r.commandLines(s, i)})
			fmt.Fprintf(r.log, "bench: %s %s\n", s.name, why)
			continue
		}
		fmt.Fprintf(r.log, "bench: %s: running (limit %v)\n", s.name, limit.Round(time.Second))
		res := r.runStep(ctx, s, i, limit)
		state := "ok"
		if !res.OK {
			state = "FAILED: " + res.Error
		}
		fmt.Fprintf(r.log, "bench: %s: %s in %v\n", s.name, state, time.Duration(res.Seconds*float64(time.Second)).Round(100*time.Millisecond))
		out = append(out, res)
	}
	return out
}

func (r *runner) jsonPath(stepIdx, cmdIdx int, name string) string {
	return filepath.Join(r.dir, fmt.Sprintf("%02d-%s-%d.json", stepIdx, name, cmdIdx))
}

func (r *runner) expand(s string, jsonPath string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "{go}", r.goCmd), "{json}", jsonPath)
}

func (r *runner) commandLines(s step, idx int) []string {
	var ls []string
	for j, c := range s.cmds {
		var parts []string
		for _, e := range c.env {
			parts = append(parts, r.expand(e, r.jsonPath(idx, j, s.name)))
		}
		for _, a := range c.argv {
			a = r.expand(a, r.jsonPath(idx, j, s.name))
			if strings.ContainsAny(a, " ^$*") {
				a = "'" + a + "'"
			}
			parts = append(parts, a)
		}
		ls = append(ls, strings.Join(parts, " "))
	}
	return ls
}

// runStep runs s's commands within limit. The step fails if a command
// fails, writes unreadable JSON, or if no command wrote any JSON; a
// command that succeeds without writing JSON while another did (a package
// with no benchmark of the step's pattern that reports) is a warning. The
// sections of the files that were written count either way.
func (r *runner) runStep(ctx context.Context, s step, idx int, limit time.Duration) stepResult {
	res := stepResult{Name: s.name, Limit: limit.Seconds(), Commands: r.commandLines(s, idx)}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var errs []error
	var missing []string
	var missingTail []string
	for j, c := range s.cmds {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s not run: out of time", res.Commands[j]))
			continue
		}
		path := r.jsonPath(idx, j, s.name)
		os.Remove(path)
		tail, cerr := r.runCmd(ctx, c, path, fmt.Sprintf("%02d-%s-%d.log", idx, s.name, j))
		secs, rerr := readSections(path)
		res.Sections = append(res.Sections, secs...)
		switch {
		case cerr != nil:
			errs = append(errs, cerr)
		case errors.Is(rerr, errNoJSON):
			missing = append(missing, fmt.Sprintf("%s (%s)", rerr, res.Commands[j]))
			missingTail = append(missingTail, tail.lines()...)
			continue
		case rerr != nil:
			errs = append(errs, rerr)
		default:
			continue
		}
		res.Tail = append(res.Tail, tail.lines()...)
	}
	if len(res.Sections) == 0 && len(missing) > 0 {
		errs = append(errs, errors.New(strings.Join(missing, "; ")))
		res.Tail = append(res.Tail, missingTail...)
	} else {
		res.Warnings = missing
	}
	res.Seconds = time.Since(began).Seconds()
	if err := errors.Join(errs...); err != nil {
		res.Error = strings.ReplaceAll(err.Error(), "\n", "; ")
		return res
	}
	res.OK = true
	return res
}

// runCmd runs one command in its own process group, so that on timeout
// (or interrupt) the whole group, go run's or go test's child included,
// gets SIGTERM and, after r.grace, SIGKILL; by its group ID, nothing
// else.
func (r *runner) runCmd(ctx context.Context, c stepCmd, jsonPath, logName string) (*lineTail, error) {
	argv := make([]string, len(c.argv))
	for i, a := range c.argv {
		argv[i] = r.expand(a, jsonPath)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	for _, e := range c.env {
		cmd.Env = append(cmd.Env, r.expand(e, jsonPath))
	}
	cmd.Dir = r.root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.Create(filepath.Join(r.dir, logName))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	tail := &lineTail{max: 12}
	var w io.Writer = io.MultiWriter(logFile, tail)
	if r.verbose {
		w = io.MultiWriter(w, r.log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return tail, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	select {
	case err := <-done:
		if err != nil {
			return tail, fmt.Errorf("%s: %w", argv[0]+" "+strings.Join(argv[1:min(3, len(argv))], " "), err)
		}
		return tail, nil
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(r.grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return tail, errors.New("stopped at its time limit")
	}
	return tail, errors.New("interrupted")
}

// lineTail keeps the last max lines written to it.
type lineTail struct {
	mu      sync.Mutex
	max     int
	partial []byte
	ls      []string
}

func (t *lineTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := strings.IndexByte(string(t.partial), '\n')
		if i < 0 {
			break
		}
		t.add(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > 4096 { // a runaway line: keep its end
		t.partial = t.partial[len(t.partial)-4096:]
	}
	return len(p), nil
}

func (t *lineTail) add(l string) {
	l = strings.TrimRight(l, "\r")
	if strings.TrimSpace(l) == "" {
		return
	}
	if len(l) > 300 {
		l = l[:300] + "…"
	}
	t.ls = append(t.ls, l)
	if len(t.ls) > t.max {
		t.ls = t.ls[len(t.ls)-t.max:]
	}
}

func (t *lineTail) lines() []string {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ls := append([]string(nil), t.ls...)
	if len(t.partial) > 0 {
		ls = append(ls, string(t.partial))
	}
	return ls
}

var errNoJSON = errors.New("wrote no JSON")

// readSections reads a step's JSON file.
func readSections(path string) ([]benchfmt.Section, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoJSON
	}
	if err != nil {
		return nil, err
	}
	var f benchfmt.File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if len(f.Sections) == 0 {
		return nil, fmt.Errorf("%s has no sections", filepath.Base(path))
	}
	for _, s := range f.Sections {
		if s.Name == "" {
			return nil, fmt.Errorf("%s: a section without a name", filepath.Base(path))
		}
		for _, row := range s.Rows {
			if row.Metric == "" || row.Better != "lower" && row.Better != "higher" {
				return nil, fmt.Errorf("%s: section %q: row %q: want a metric and better = lower or higher", filepath.Base(path), s.Name, row.Metric)
			}
		}
	}
	return f.Sections, nil
}
