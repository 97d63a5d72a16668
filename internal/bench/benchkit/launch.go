// Package benchkit is what the benchmark programs under internal/bench
// (fetchbench, soakbench) share: building the node binary and the launcher, running a
// child through the launcher for an honest rusage, running `node seed`,
// generating and checking content, and printing and writing a section of
// the shared schema (benchfmt).
package benchkit

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// launcherSource is the launcher (./spawn), built on its own (it needs
// nothing but the standard library) wherever a benchmark runs from.
//
//go:embed spawn/main.go
var launcherSource []byte

// BuildLauncher builds the launcher into dir/spawn and returns its path.
func BuildLauncher(ctx context.Context, dir string) (string, error) {
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

// NodeBinary is our node binary: given (made absolute, as children run
// elsewhere) or, if given is "", go build node/cmd/node into dir/node.
// prog names the benchmark in the error.
func NodeBinary(ctx context.Context, dir, given, prog string) (string, error) {
	if given != "" {
		return filepath.Abs(given)
	}
	out := filepath.Join(dir, "node")
	b := exec.CommandContext(ctx, "go", "build", "-o", out, "node/cmd/node")
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		return "", fmt.Errorf("go build node/cmd/node (run %s inside the module, or pass -node): %w", prog, err)
	}
	return out, nil
}

// Launch is the command that runs name with args through the launcher,
// killed by the launcher after limit; ctx, which the command runs under,
// expires a little later, in case the launcher itself hangs (then it is
// killed, that PID only). The caller sets its output and starts it.
func Launch(parent context.Context, launcher string, limit time.Duration, name string, args ...string) (*exec.Cmd, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, limit+15*time.Second)
	argv := append([]string{"-limit", limit.String(), "--", name}, args...)
	cmd := exec.CommandContext(ctx, launcher, argv...)
	cmd.WaitDelay = 5 * time.Second
	return cmd, ctx, cancel
}

// Usage is the launcher's last stdout line: the child's rusage and end.
type Usage struct {
	Event    string `json:"event"` // "rusage"
	UtimeNs  int64  `json:"utime_ns"`
	StimeNs  int64  `json:"stime_ns"`
	MaxRSS   int64  `json:"maxrss_kib"`
	Exit     int    `json:"exit"`
	Signaled string `json:"signal,omitempty"`
	Killed   bool   `json:"killed,omitempty"` // by the launcher, at -limit
}

// UserCPU and SysCPU are the child's CPU times in seconds.
func (u *Usage) UserCPU() float64 { return time.Duration(u.UtimeNs).Seconds() }
func (u *Usage) SysCPU() float64  { return time.Duration(u.StimeNs).Seconds() }

// MaxRSSMiB is the child's ru_maxrss (KiB on Linux) in MiB.
func (u *Usage) MaxRSSMiB() float64 { return float64(u.MaxRSS) / 1024 }

// Events is what ReadEvents saw on the launcher's stdout.
type Events struct {
	// Metadata and Complete are the times from the child's start to its
	// first "metadata" and "complete" events; 0: none.
	Metadata, Complete time.Duration
	Usage              *Usage // the launcher's rusage line; nil: none
}

// ReadEvents reads the launcher's stdout, JSON lines, to its end. It
// sets *start to when the launcher said it was about to start the child,
// times the child's "metadata" and "complete" events from then, and
// passes each of the child's events to f.
func ReadEvents(r io.Reader, start *time.Time, f func(ev map[string]any)) Events {
	var got Events
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		now := time.Now()
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		switch ev["event"] {
		case "started":
			*start = now
			continue
		case "rusage":
			var u Usage
			if json.Unmarshal(sc.Bytes(), &u) == nil {
				got.Usage = &u
			}
			continue
		case "metadata":
			if got.Metadata == 0 {
				got.Metadata = now.Sub(*start)
			}
		case "complete":
			if got.Complete == 0 {
				got.Complete = now.Sub(*start)
			}
		}
		f(ev)
	}
	return got
}

// Tail keeps the last 8 KiB written to it, a child's stderr for an error
// message.
type Tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

// String is what it kept, white space trimmed.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
