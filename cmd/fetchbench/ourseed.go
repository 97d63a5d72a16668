package main

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

	"node/dht"
	"node/peer/peertest"
)

// ourSeederIP is where node seed listens (TCP for peers, UDP for its DHT
// node), apart from the anacrolix seeders' 127.0.91.1-4.
const ourSeederIP = "127.0.91.11"

// ourSeeder is `node seed` (the -node binary) running as its own process.
type ourSeeder struct {
	cmd    *exec.Cmd
	addr   netip.AddrPort
	tail   stderrTail
	cancel context.CancelFunc
	done   chan struct{} // closed once the process has been waited for
	err    error         // cmd.Wait's, once done is closed
}

// startOurSeeder starts node seed serving c (a .torrent written to
// torrentPath) from dir, its DHT node bootstrapped from boot, and waits
// until n (one of our DHT nodes) has its announce. The process is stopped
// by stop, or killed when life runs out (or if this program dies:
// Pdeathsig).
func startOurSeeder(ctx context.Context, nodeBin, dir, torrentPath string, c *content, boot string, n *dht.Node, life time.Duration) (*ourSeeder, error) {
	b, err := c.mi.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(torrentPath, b, 0o644); err != nil {
		return nil, err
	}
	port, err := freePort(ourSeederIP)
	if err != nil {
		return nil, err
	}
	s := &ourSeeder{
		addr: netip.AddrPortFrom(netip.MustParseAddr(ourSeederIP), port),
		done: make(chan struct{}),
	}
	cctx, cancel := context.WithTimeout(ctx, life)
	s.cancel = cancel
	s.cmd = exec.CommandContext(cctx, nodeBin, "seed",
		"--listen", s.addr.String(), "--bootstrap", boot, "--dir", dir, torrentPath)
	// SIGINT is node seed's normal end; SIGKILL (to this PID only) if it
	// has not exited 5 s later.
	s.cmd.Cancel = func() error { return s.cmd.Process.Signal(os.Interrupt) }
	s.cmd.WaitDelay = 5 * time.Second
	s.cmd.Stderr = &s.tail
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits,
		// and Go may end threads: start it from a locked thread that this
		// goroutine keeps until the child has been waited for.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			close(s.done)
			return
		}
		started <- nil
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		cancel()
		return nil, fmt.Errorf("node seed: %w", err)
	}
	logf("node seed (pid %d) on %v, verifying %d bytes", s.cmd.Process.Pid, s.addr, c.total)

	began := time.Now()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go func() {
		select {
		case <-s.done:
			wcancel()
		case <-wctx.Done():
		}
	}()
	// Its own verification of the data comes first (a few seconds).
	if _, err := peertest.WaitAnnounced(wctx, n, c.mi.Info.InfoHash, s.addr, 120*time.Second); err != nil {
		if e := s.exited(); e != nil {
			err = e
		}
		s.stop()
		return nil, err
	}
	logf("node seed verified its data and our DHT has its announce after %v", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// exited says whether, and how, the seeder ended early.
func (s *ourSeeder) exited() error {
	select {
	case <-s.done:
		return fmt.Errorf("node seed exited: %v; stderr: %s", s.err, s.tail.String())
	default:
		return nil
	}
}

// cpu is the seeder's user+sys CPU time so far, from /proc/PID/stat.
func (s *ourSeeder) cpu() (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its end.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", s.cmd.Process.Pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", s.cmd.Process.Pid, err)
	}
	// In USER_HZ ticks, 100 a second on Linux whatever the kernel's HZ.
	return float64(utime+stime) / 100, nil
}

// stop interrupts the seeder and waits for it (at most about 5 s, then it
// is killed).
func (s *ourSeeder) stop() {
	s.cancel()
	select {
	case <-s.done:
		logf("node seed (pid %d) stopped: %v", s.cmd.Process.Pid, s.cmd.ProcessState)
	case <-time.After(15 * time.Second):
		logf("node seed (pid %d) did not exit", s.cmd.Process.Pid)
	}
}

// freePort is a port free for both TCP and UDP on ip just now, for a
// seeder that must be told its address before it starts.
func freePort(ip string) (uint16, error) {
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

// selfCPU is this process's user+sys CPU time so far: with the anacrolix
// seeders in this process, what they use (plus our idle DHT nodes).
func selfCPU() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
}
