package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"node/internal/testutil"
	"node/internal/testutil/dhtnet"
)

func TestMain(m *testing.M) {
	// The commands run here in-process keep no state unless a test asks;
	// those run as programs keep theirs in a directory of this run's,
	// should one forget --state-dir=, never in the user's home.
	stateDirDefault = func() string { return "" }
	dir, err := os.MkdirTemp("", "node-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", dir)
	code := 0
	defer func() {
		os.RemoveAll(dir)
		os.Exit(code)
	}()
	code = m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
}

// startNetwork starts count in-process DHT nodes on 127.0.<subnet>.x and
// returns a bootstrap address for the CLI.
func startNetwork(t *testing.T, subnet, count int) string {
	t.Helper()
	nodes := dhtnet.Start(t, subnet, count)
	return nodes[count/2].Addr().String()
}

// lockedBuffer stands in for stdout or stderr: like an *os.File it may be
// written by several goroutines (the logger, the progress reporter).
type lockedBuffer = testutil.Buffer

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e lockedBuffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestPeersAnnounceThenFind(t *testing.T) {
	boot := startNetwork(t, 61, 12)
	ih := strings.Repeat("ab", 20)

	code, _, errOut := runCmd("peers", "--listen", "127.0.61.100:0", "--bootstrap", boot,
		"--announce", "7100", "--timeout", "20s", ih)
	if code != exitOK {
		t.Fatalf("announce exited %d: %s", code, errOut)
	}

	link := "magnet:?xt=urn:btih:" + ih + "&dn=x"
	code, out, errOut := runCmd("peers", "--listen", "127.0.61.101:0", "--bootstrap", boot, "--timeout", "20s", link)
	if code != exitOK {
		t.Fatalf("lookup exited %d: %s", code, errOut)
	}
	if strings.TrimSpace(out) != "127.0.61.100:7100" {
		t.Fatalf("stdout %q, want exactly the announced peer", out)
	}
	if !strings.Contains(errOut, "1 peers") {
		t.Fatalf("summary %q", errOut)
	}

	// Nobody announced this one: the lookup ends, and says so.
	other := hex.EncodeToString(bytes.Repeat([]byte{0x5a}, 20))
	code, out, errOut = runCmd("peers", "--listen", "127.0.61.102:0", "--bootstrap", boot, "--timeout", "20s", other)
	if code != exitNoPeers || out != "" || !strings.Contains(errOut, "no peers found") {
		t.Fatalf("unknown hash: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"peers"},
		{"peers", "--no-such-flag", strings.Repeat("ab", 20)},
		{"peers", "--announce", "70000", strings.Repeat("ab", 20)},
		{"dht", "--no-port-mapping", "--state-dir=", "extra-arg"},
		{"dht", "--no-port-mapping", "--state-dir=", "--log-level", "loud"},
	} {
		if code, _, _ := runCmd(args...); code != exitUsage {
			t.Errorf("node %q exited %d, want %d", args, code, exitUsage)
		}
	}
	for _, args := range [][]string{
		{"peers", "not-a-hash"},
		{"peers", "magnet:?dn=no-xt"},
	} {
		if code, _, _ := runCmd(args...); code != exitBadInput {
			t.Errorf("node %q exited %d, want %d", args, code, exitBadInput)
		}
	}
	if code, out, _ := runCmd("help"); code != exitOK || !strings.Contains(out, "usage") {
		t.Errorf("help: exit %d, %q", code, out)
	}
}

// TestDHTCommand runs the real binary: it starts, logs status lines, and on
// SIGTERM shuts down cleanly, saving its table.
func TestDHTCommand(t *testing.T) {
	bin := nodeBinary(t)
	dir := t.TempDir()
	boot := startNetwork(t, 62, 5)
	state := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "dht", "--no-port-mapping", "--state-dir=", "--listen", "127.0.62.100:0", "--bootstrap", boot,
		"--state-dir", state, "--log-json", "--status-interval", "200ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]any{}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		msg, _ := l["msg"].(string)
		seen[msg] = l
		if msg == "status" && l["nodes"].(float64) >= 4 {
			break
		}
	}
	if _, ok := seen["bootstrapped"]; !ok {
		t.Fatalf("no bootstrap line before status; saw %v", seen)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(state, "dht.dat")); err != nil || fi.Size() < 26*4 {
		t.Fatalf("saved state: %v %v", fi, err)
	}
}
