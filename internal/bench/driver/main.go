// Command driver is `make bench`: it runs every benchmark that compares
// node with anacrolix, each step as a subprocess with its own time limit
// under one global deadline, merges the JSON files they write into one
// table (ours, anacrolix's, the ratio ours/anacrolix, the target and
// whether it is met) on stdout, and writes the merged JSON to -json.
//
// Usage:
//
//	go run ./internal/bench/driver [-json bench.json] [-skip fetch,lookup,serve,decode,soak,sim,cold] [-deadline 9m30s] [-v] [-keep] [-go go]
//
// The steps, in order, are the list in steps.go. Each writes the shared
// schema: {"sections":[{"name","rows":[{"metric","unit","ours",
// "anacrolix","better","target","met"}],"notes"}]}. A step that fails,
// runs out of time or writes no JSON is shown as failed, with the last
// lines of its output, and makes bench exit 1 once the others have run.
// Progress (each step's start, end and duration) goes to stderr; -v also
// streams the steps' own output there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	jsonPath := flag.String("json", "", "write the merged results as JSON to this `file`")
	skip := flag.String("skip", "", "comma-separated steps not to run, of "+strings.Join(stepNames(defaultSteps), ", "))
	deadline := flag.Duration("deadline", globalDeadline, "stop everything after this long")
	verbose := flag.Bool("v", false, "stream the steps' own output to stderr")
	keep := flag.Bool("keep", false, "keep the temp directory with each step's JSON and output")
	goCmd := flag.String("go", "go", "the go command")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		return 64
	}
	skipped, err := parseSkip(*skip, defaultSteps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 64
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	ctx, cancel := context.WithDeadline(ctx, began.Add(*deadline))
	defer cancel()

	tmp, err := os.MkdirTemp("", "bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if *keep {
		defer fmt.Fprintf(os.Stderr, "bench: kept %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	root, err := moduleRoot(ctx, *goCmd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	r := runner{dir: tmp, root: root, goCmd: *goCmd, grace: 10 * time.Second, verbose: *verbose, log: os.Stderr}
	results := r.runAll(ctx, defaultSteps, skipped)
	m := merge(results, machineInfo(), began)
	m.TotalSeconds = time.Since(began).Seconds()
	render(os.Stdout, m)

	code := 0
	if *jsonPath != "" {
		if err := writeMerged(*jsonPath, m); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			code = 1
		} else {
			fmt.Fprintf(os.Stderr, "bench: wrote %s\n", *jsonPath)
		}
	}
	if failed := m.failedSteps(); len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "bench: failed: %s\n", strings.Join(failed, ", "))
		code = 1
	}
	return code
}

// parseSkip checks a -skip list against the steps' names.
func parseSkip(s string, steps []step) (map[string]bool, error) {
	out := map[string]bool{}
	if s == "" {
		return out, nil
	}
	names := stepNames(steps)
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("-skip: no step %q (steps: %s)", n, strings.Join(names, ", "))
		}
		out[n] = true
	}
	return out, nil
}

func stepNames(steps []step) []string {
	var ns []string
	for _, s := range steps {
		ns = append(ns, s.name)
	}
	return ns
}

// moduleRoot is the directory of the main module's go.mod: the steps'
// commands name packages relative to it.
func moduleRoot(ctx context.Context, goCmd string) (string, error) {
	out, err := exec.CommandContext(ctx, goCmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("%s env GOMOD: %w", goCmd, err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run bench inside the node module")
	}
	return filepath.Dir(gomod), nil
}

// machineInfo describes where the figures come from: OS, architecture,
// CPU model and memory, from /proc where there is one.
func machineInfo() machine {
	m := machine{CPUModel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		for _, l := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(l, "MemTotal: %d kB", &kib); err == nil {
				m.MemoryGiB = float64(kib) / (1 << 20)
				break
			}
		}
	}
	return m
}

// writeMerged writes m through a temporary file in the same directory.
func writeMerged(path string, m merged) error {
	b, err := m.marshal()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bench-*.json")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
