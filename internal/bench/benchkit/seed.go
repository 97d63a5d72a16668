package benchkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Seed is `node seed` (our binary) running as its own process.
type Seed struct {
	Cmd    *exec.Cmd
	Addr   netip.AddrPort
	tail   Tail
	cancel context.CancelFunc
	done   chan struct{} // closed once the process has been waited for
	err    error         // cmd.Wait's, once done is closed
}

// StartSeed starts nodeBin seed serving the .torrent file torrent from
// dir, listening on addr (TCP for peers, UDP for its DHT node), its DHT
// node bootstrapped from boot. The process ends when ctx does or with
// Stop (SIGINT, its normal end; SIGKILL to its PID 5 s later), or if
// this program dies (Pdeathsig). It serves over plain TCP alone
// (--no-utp --encryption off) unless transport gives other flags.
func StartSeed(ctx context.Context, nodeBin string, addr netip.AddrPort, boot, dir, torrent string, transport ...string) (*Seed, error) {
	s := &Seed{Addr: addr, done: make(chan struct{})}
	cctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	if len(transport) == 0 {
		transport = []string{"--no-utp", "--encryption", "off"}
	}
	args := append([]string{"seed", "--no-port-mapping", "--state-dir="}, transport...)
	args = append(args, "--listen", addr.String(), "--bootstrap", boot, "--dir", dir, torrent)
	s.Cmd = exec.CommandContext(cctx, nodeBin, args...)
	s.Cmd.Cancel = func() error { return s.Cmd.Process.Signal(os.Interrupt) }
	s.Cmd.WaitDelay = 5 * time.Second
	s.Cmd.Stderr = &s.tail
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits,
		// and Go may end threads: start it from a locked thread that this
		// goroutine keeps until the child has been waited for.
		runtime.LockOSThread()
		if err := s.Cmd.Start(); err != nil {
			started <- err
			close(s.done)
			return
		}
		started <- nil
		s.err = s.Cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		cancel()
		return nil, fmt.Errorf("node seed: %w", err)
	}
	return s, nil
}

// While runs f with a context that also ends if the seeder exits, so
// that a wait for its announce does not outlive it. If f fails after the
// seeder exited, the error says how it ended instead.
func (s *Seed) While(ctx context.Context, f func(context.Context) error) error {
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go func() {
		select {
		case <-s.done:
			wcancel()
		case <-wctx.Done():
		}
	}()
	err := f(wctx)
	if err != nil {
		if e := s.Exited(); e != nil {
			err = e
		}
	}
	return err
}

// Exited says whether, and how, the seeder ended early.
func (s *Seed) Exited() error {
	select {
	case <-s.done:
		return fmt.Errorf("node seed on %v exited: %v; stderr: %s", s.Addr, s.err, s.tail.String())
	default:
		return nil
	}
}

// Stop interrupts the seeder and waits for it, at most wait; it says
// whether the seeder exited.
func (s *Seed) Stop(wait time.Duration) bool {
	s.cancel()
	select {
	case <-s.done:
		return true
	case <-time.After(wait):
		return false
	}
}

// CPU is the seeder's user+sys CPU time so far, from /proc/PID/stat.
func (s *Seed) CPU() (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.Cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its end.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", s.Cmd.Process.Pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", s.Cmd.Process.Pid, err)
	}
	// In USER_HZ ticks, 100 a second on Linux whatever the kernel's HZ.
	return float64(utime+stime) / 100, nil
}

// FreePort is a port free for both TCP and UDP on ip just now, for a
// process that must be told its address before it starts.
func FreePort(ip string) (uint16, error) {
	for range 10 {
		ln, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(p)))
		ln.Close()
		if err == nil {
			pc.Close()
			return uint16(p), nil
		}
	}
	return 0, fmt.Errorf("no port free for both TCP and UDP on %s", ip)
}
