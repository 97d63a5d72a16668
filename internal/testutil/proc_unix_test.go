//go:build unix

package testutil

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A child's lines arrive in order, Stop ends a process group that ignores
// the polite signal, and nothing is left running.
func TestProcLinesAndStop(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command("sh", "-c", `trap "" TERM; echo one; echo two; echo oops >&2; exec sleep 60`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := StartProc(t, "sh", cmd, ProcOptions{Lines: true, Signal: syscall.SIGTERM, Grace: 50 * time.Millisecond})
	var seen []string
	p.Await(t, 10*time.Second, "two", func(l string) bool {
		seen = append(seen, l)
		return l == "two"
	})
	if strings.Join(seen, ",") != "one,two" {
		t.Fatalf("lines %q", seen)
	}
	p.Stop(syscall.SIGTERM, 50*time.Millisecond)
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process was reaped")
	}
	if p.Err() == nil {
		t.Fatal("a killed process ended without an error")
	}
	if !strings.Contains(p.Stderr.String(), "oops") {
		t.Fatalf("stderr %q", p.Stderr.String())
	}
	if err := syscall.Kill(-cmd.Process.Pid, 0); err == nil {
		t.Fatal("the process group outlived Stop")
	}
}

// A line over ProcMaxLine ends Lines instead of growing without bound.
func TestProcMaxLine(t *testing.T) {
	cmd := exec.Command("sh", "-c", "head -c "+strconv.Itoa(ProcMaxLine+1)+" /dev/zero | tr '\\0' x; echo; echo after")
	p := StartProc(t, "sh", cmd, ProcOptions{Lines: true})
	n := 0
	for range p.Lines {
		n++
	}
	if n != 0 {
		t.Fatalf("%d lines read past an over-long one", n)
	}
}

func TestProcExitsOK(t *testing.T) {
	p := StartProc(t, "true", exec.Command("true"), ProcOptions{})
	p.ExitsOK(t, 10*time.Second)
}

// What a failing test logs of a process's output stays within
// ProcLogTail.
func TestTailBound(t *testing.T) {
	long := strings.Repeat("x", 3*ProcLogTail)
	if got := Tail(long, ProcLogTail); len(got) > ProcLogTail+len("...") || !strings.HasSuffix(long, got[3:]) {
		t.Fatalf("Tail kept %d bytes", len(got))
	}
	if got := Tail("short", ProcLogTail); got != "short" {
		t.Fatalf("Tail(short) = %q", got)
	}
}
