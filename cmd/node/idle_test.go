package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procCPU is the user+sys CPU time of process pid so far, from
// /proc/PID/stat (in USER_HZ ticks, 100 per second on Linux).
func procCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// The command name (field 2) may hold spaces: count from its end.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parsing /proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// A node that is seeding sits idle: once the download is complete, the
// supervisor must block rather than spin on the closed completion
// channel, as it once did, burning a core for as long as it seeded.
func TestSeedingIdlesWithoutSpinning(t *testing.T) {
	bin := nodeBinary(t)
	boot := startNetwork(t, 67, 4)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "data"), map[string]int{"x.bin": 200_000})
	tor := filepath.Join(t.TempDir(), "x.torrent")
	if code, _, errOut := runCmd("create", filepath.Join(src, "data"), "-o", tor, "--piece-length", "32768"); code != exitOK {
		t.Fatalf("create: exit %d\n%s", code, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "seed", "--no-port-mapping", "--state-dir=", "--listen", "127.0.67.50:0", "--bootstrap", boot, "--dir", src, tor)
	defer startSeeding(t, cmd)()
	pid := cmd.Process.Pid
	const idle = 3 * time.Second
	before := procCPU(t, pid)
	time.Sleep(idle)
	// Idle, a seeder uses a few milliseconds (DHT upkeep, a tick a
	// second); spinning, at least a good part of a core even on a busy
	// machine.
	if used := procCPU(t, pid) - before; used > idle/5 {
		t.Fatalf("seeding idle for %v used %v of CPU", idle, used)
	}
}

// startSeeding starts cmd, a node seed, and returns once it logs that it
// seeds, with the function that ends it (SIGINT) and reaps it.
func startSeeding(tb testing.TB, cmd *exec.Cmd) (stop func()) {
	tb.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "seeding") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}
}
