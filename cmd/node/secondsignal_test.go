package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secondSignalEnv makes the test binary, run again, be the process
// TestSecondSignalKills signals.
const secondSignalEnv = "NODE_TEST_SECOND_SIGNAL"

// A second SIGINT during a shutdown that takes long ends the process, as
// Ctrl-C does by default; the first only begins the shutdown.
func TestSecondSignalKills(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondSignalProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), secondSignalEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	defer func() {
		_ = cmd.Process.Kill()
	}()
	deadline := time.After(20 * time.Second)
	waitLine := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the process ended before %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q", want)
			}
		}
	}
	waitLine("ready")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitLine("a second interrupt ends the process")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("the process ended with %v, want killed by SIGINT", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
			t.Fatalf("the process ended with %v, want killed by SIGINT", err)
		}
	case <-time.After(10 * time.Second): // a bound on a hang: its shutdown lasts a minute
		t.Fatal("the second SIGINT did not end the process")
	}
}

// TestSecondSignalProcess is the process TestSecondSignalKills signals: a
// daemon's signal handling, and a shutdown that lasts a minute.
func TestSecondSignalProcess(t *testing.T) {
	if os.Getenv(secondSignalEnv) != "1" {
		t.Skip("run by TestSecondSignalKills")
	}
	f := &dhtFlags{logLevel: "info"}
	log, sigCtx, stopped, err := f.untilStopped(os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := secondSignalKills(sigCtx, stopped, log)
	defer cancel()
	os.Stderr.WriteString("ready\n")
	<-ctx.Done()
	<-time.After(time.Minute) // the slow shutdown
	t.Fatal("still running a minute after the second signal")
}
