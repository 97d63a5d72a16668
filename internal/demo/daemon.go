package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"node/cmd/node/api"
	"node/magnet"
	"node/metadata"
)

// Bounds of the daemon's part of the demo.
const (
	// daemonStartTimeout bounds the wait for the daemon's API address
	// and token to appear in its state directory.
	daemonStartTimeout = 15 * time.Second
	// daemonFetchTimeout bounds the daemon's download of the demo's 30
	// MiB: about a second on loopback, unthrottled; twenty under -keep.
	daemonFetchTimeout = 60 * time.Second
	// daemonStopTimeout bounds the daemon's clean exit after SIGTERM.
	daemonStopTimeout = 10 * time.Second
	// pollInterval is how often the demo reads the torrent's progress.
	pollInterval = 100 * time.Millisecond
	// progressInterval is how often it prints a progress line.
	progressInterval = time.Second
	// keepRate is the daemon's --max-download-rate under -keep: slow
	// enough that someone has time to open the page and watch.
	keepRate = "1.5MiB"
	// daemonListen is the daemon's DHT and peer address.
	daemonListen = "127.0.79.3"
)

// daemonDemo runs node daemon, adds link through its API (node add),
// follows the download to the end and checks the files against src.
func (d *demo) daemonDemo(ctx context.Context, boot, link, src, work string, files map[string]int) error {
	state, dir := filepath.Join(work, "state"), filepath.Join(work, "download")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	args := []string{"daemon", "--no-port-mapping", "--state-dir", state, "--dir", dir, "--api", "127.0.0.1:0",
		"--listen", daemonListen + ":0", "--bootstrap", boot, "--log-level", "warn"}
	shown := "node daemon --state-dir daemon/state --dir daemon/download"
	if d.keep != nil {
		args = append(args, "--max-download-rate", keepRate)
		shown += " --max-download-rate " + keepRate
	}
	fmt.Printf("\n$ %s   (in the background, on %s)\n", shown, daemonListen)
	p, err := d.startDaemon(args)
	if err != nil {
		return err
	}
	addr, token, err := p.waitAPI(ctx, state)
	if err != nil {
		return err
	}
	c := api.NewClient(addr, token)
	defer c.Close()
	login, err := c.NewLoginURL(ctx)
	if err != nil {
		return fmt.Errorf("a login URL from the daemon: %w", err)
	}
	fmt.Printf("web page: %s   (logs one tab in, once, within %v; node url --state-dir daemon/state prints another)\n", login.URL, api.LoginCodeTTL)
	fmt.Printf("metrics:  curl -H \"Authorization: Bearer $(cat %s)\" http://%s/metrics\n",
		filepath.Join(state, api.TokenFile), addr)

	fmt.Printf("\n$ node add --state-dir daemon/state '%s'\n", link)
	if _, err := d.runNode(ctx, "add", "--state-dir", state, link); err != nil {
		return fmt.Errorf("node add: %w (daemon's log:\n%s)", err, p.log())
	}
	m, err := magnet.Parse(link)
	if err != nil {
		return err
	}
	start := time.Now()
	tr, err := follow(ctx, c, m.InfoHash)
	if err != nil {
		return fmt.Errorf("the daemon's download: %w (daemon's log:\n%s)", err, p.log())
	}
	fmt.Printf("%s: %s, %d of %d pieces, in %.1fs\n", tr.State, mib(tr.Done), tr.Have, tr.Pieces, time.Since(start).Seconds())
	if err := checkFiles(src, dir, files); err != nil {
		return fmt.Errorf("the daemon's download: %w", err)
	}
	fmt.Printf("the daemon's %d files match the originals byte for byte\n", len(files))
	fmt.Printf("\n$ node ls --state-dir daemon/state\n")
	if _, err := d.runNode(ctx, "ls", "--state-dir", state); err != nil {
		return fmt.Errorf("node ls: %w", err)
	}

	if d.keep != nil {
		login, err := c.NewLoginURL(ctx)
		if err != nil {
			return fmt.Errorf("a login URL from the daemon: %w", err)
		}
		fmt.Printf("\nnode daemon keeps running: open %s\n", login.URL)
		fmt.Printf("(remove the torrent with its data in the page and add the magnet link again to watch it once more). Ctrl-C stops it.\n")
		select {
		case <-d.keep.Done():
		case <-p.done:
			return fmt.Errorf("the daemon exited: %v (its log:\n%s)", p.err, p.log())
		}
	}
	fmt.Printf("\nstopping node daemon (SIGTERM)\n")
	d.mu.Lock()
	d.daemon = nil
	d.mu.Unlock()
	if err := p.stop(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(state, api.AddrFile)); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the daemon left its %s behind after a clean stop (%v)", api.AddrFile, err)
	}
	fmt.Printf("node daemon exited cleanly\n")
	return nil
}

// follow polls the torrent until it is complete, printing a line when its
// state changes and one every progressInterval.
func follow(ctx context.Context, c *api.Client, ih metadata.InfoHash) (api.Torrent, error) {
	ctx, cancel := context.WithTimeout(ctx, daemonFetchTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var lastState string
	var lastLine time.Time
	for {
		td, err := c.Get(ctx, ih)
		if err != nil {
			return api.Torrent{}, err
		}
		tr := td.Torrent
		switch tr.State {
		case api.StateSeeding, api.StateDone:
			return tr, nil
		case api.StateError:
			return tr, fmt.Errorf("torrent in error: %s", tr.Error)
		}
		if tr.State != lastState || time.Since(lastLine) >= progressInterval {
			total := "?"
			if tr.Length > 0 {
				total = mib(tr.Length)
			}
			fmt.Printf("%s: %s of %s, %d peers, %s/s\n", tr.State, mib(tr.Done), total, tr.Peers, mib(int64(tr.DownRate)))
			lastState, lastLine = tr.State, time.Now()
		}
		select {
		case <-ctx.Done():
			return tr, fmt.Errorf("not complete after %v: %s, %d of %d bytes", daemonFetchTimeout, tr.State, tr.Done, tr.Length)
		case <-tick.C:
		}
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// daemonProc is the node daemon the demo started.
type daemonProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it exited; err is then set
	err  error
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (p *daemonProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *daemonProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// startDaemon starts node daemon with args, its log kept for errors;
// stopAll ends it if the demo fails before it does.
func (d *demo) startDaemon(args []string) (*daemonProc, error) {
	p := &daemonProc{done: make(chan struct{})}
	p.cmd = exec.Command(d.bin, args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	d.mu.Lock()
	d.daemon = p
	d.mu.Unlock()
	return p, nil
}

// waitAPI waits for the daemon's API address and token in its state
// directory.
func (p *daemonProc) waitAPI(ctx context.Context, state string) (addr, token string, err error) {
	deadline := time.NewTimer(daemonStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval / 2)
	defer tick.Stop()
	for {
		addr, err = api.ReadAddr(state)
		if err == nil {
			token, err = api.ReadToken(filepath.Join(state, api.TokenFile))
			return addr, token, err
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-p.done:
			return "", "", fmt.Errorf("node daemon exited: %v\n%s", p.err, p.log())
		case <-deadline.C:
			return "", "", fmt.Errorf("node daemon wrote no %s in %v\n%s", api.AddrFile, daemonStartTimeout, p.log())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, by PID, and wants a clean exit within
// daemonStopTimeout; past it, SIGKILL.
func (p *daemonProc) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("node daemon had exited already: %v\n%s", p.err, p.log())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(daemonStopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("node daemon did not exit within %v of SIGTERM; killed\n%s", daemonStopTimeout, p.log())
	}
	if p.err != nil {
		return fmt.Errorf("node daemon after SIGTERM: %v\n%s", p.err, p.log())
	}
	return nil
}
