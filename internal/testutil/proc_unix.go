//go:build unix

package testutil

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// ProcLogTail bounds how much of each of a process's stdout and
	// stderr is logged when the test fails.
	ProcLogTail = 8 << 10
	// ProcMaxLine bounds a line of ProcOptions.Lines; a longer one ends
	// Lines early (the rest of stdout is read and dropped).
	ProcMaxLine = 1 << 20
	// procLinesQueued is how many lines the reader gets ahead of the test.
	procLinesQueued = 64
)

// ProcOptions say how StartProc treats a process.
type ProcOptions struct {
	// Lines has the process's stdout read a line at a time into
	// Proc.Lines instead of Proc.Stdout.
	Lines bool
	// Signal is sent first when the test ends, SIGKILL after Grace; nil
	// is SIGKILL at once.
	Signal os.Signal
	Grace  time.Duration
}

// Proc is a program a test started.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	// Lines is its stdout a line at a time, closed at EOF, with
	// ProcOptions.Lines; nil otherwise.
	Lines <-chan string
	// Stdout and Stderr are what it wrote where cmd had no writer of its
	// own (stdout: nor Lines).
	Stdout, Stderr Buffer

	lines chan string
	done  chan struct{}
	err   error
}

// StartProc starts cmd, which name describes in the log. When the test
// ends the process is ended by its PID (its process group's, when cmd
// asks for a group of its own: then what it started goes too) and reaped,
// and what it wrote is logged if the test failed.
func StartProc(t testing.TB, name string, cmd *exec.Cmd, o ProcOptions) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{})}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.Stderr
	}
	var readers sync.WaitGroup
	if o.Lines {
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.lines = make(chan string, procLinesQueued)
		p.Lines = p.lines
		readers.Go(func() {
			defer close(p.lines)
			sc := bufio.NewScanner(stdout)
			sc.Buffer(nil, ProcMaxLine)
			for sc.Scan() {
				p.lines <- sc.Text()
			}
			// Past an over-long line, drain: a child blocked on a full
			// pipe would never exit.
			_, _ = io.Copy(io.Discard, stdout)
		})
	} else if cmd.Stdout == nil {
		cmd.Stdout = &p.Stdout
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: pid %d", name, cmd.Process.Pid)
	go func() {
		readers.Wait() // Wait closes stdout: read it all first
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(o.Signal, o.Grace)
		if t.Failed() {
			if s := p.Stdout.String(); s != "" {
				t.Logf("%s stdout:\n%s", name, Tail(s, ProcLogTail))
			}
			if s := p.Stderr.String(); s != "" {
				t.Logf("%s stderr:\n%s", name, Tail(s, ProcLogTail))
			}
		}
	})
	return p
}

// Done is closed once the process has ended and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended (exec.Cmd.Wait's error), once Done is
// closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Stop sends sig (nil: SIGKILL) unless the process has ended, and SIGKILL
// after grace if it has not ended by then; it returns once the process is
// reaped. Lines not yet read are dropped.
func (p *Proc) Stop(sig os.Signal, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	if p.lines != nil {
		go func() {
			for range p.lines {
			}
		}()
	}
	if sig != nil {
		p.signal(sig)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	p.signal(syscall.SIGKILL)
	<-p.done
}

func (p *Proc) signal(sig os.Signal) {
	if a := p.Cmd.SysProcAttr; a != nil && a.Setpgid {
		if s, ok := sig.(syscall.Signal); ok {
			_ = syscall.Kill(-p.Cmd.Process.Pid, s)
			return
		}
	}
	_ = p.Cmd.Process.Signal(sig)
}

// ExitsOK waits at most d for the process to end by itself, and fails the
// test unless it exited 0.
func (p *Proc) ExitsOK(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("%s: %v", p.Name, p.err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.Name, d)
	}
}

// Await reads Lines until match holds for one, and returns that line. It
// fails the test at EOF, naming what it waited for, or after d.
func (p *Proc) Await(t testing.TB, d time.Duration, what string, match func(line string) bool) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-p.Lines:
			if !ok {
				t.Fatalf("%s exited (%v) before %s", p.Name, p.Err(), what)
			}
			if match(l) {
				return l
			}
		case <-timer.C:
			t.Fatalf("no %s from %s after %v", what, p.Name, d)
		}
	}
}
