// Command demo runs node end to end on loopback: a DHT of node processes
// on distinct 127.0.77.x addresses; a lookup that finds an announced peer
// by magnet link; then generated multi-file content made into a
// trackerless torrent, served by `node seed`, and fetched by a real
// `node fetch` of its magnet link, whose files are checked against the
// originals; then `node daemon`, which gets the same magnet link through
// its HTTP API, downloads it and has its files checked the same way.
// Nothing leaves 127.0.0.0/8: every process gets an explicit loopback
// --bootstrap.
//
// With -keep the daemon's download is slowed (--max-download-rate) and
// the page's login URL printed before it starts, so that whoever runs the
// demo can watch it in a browser; the daemon then keeps running, until
// Ctrl-C, past -timeout.
//
// It bounds its own time, and it stops every process it started, by PID,
// on success, failure or interrupt (children also die with it, through
// Pdeathsig).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("node", "bin/node", "path to the node binary")
	count := flag.Int("nodes", 30, "DHT nodes to start")
	limit := flag.Duration("timeout", 90*time.Second, "give up after this long (a -keep daemon runs on after it, until Ctrl-C)")
	keep := flag.Bool("keep", false, "slow the daemon's download so that it can be watched in the page, and keep the daemon running until Ctrl-C")
	flag.Parse()
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sigCtx, *limit)
	defer cancel()

	d := &demo{bin: *bin}
	if *keep {
		d.keep = sigCtx
	}
	err := d.run(ctx, *count)
	d.stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("demo OK")
}

type demo struct {
	bin string
	// keep, if set, is how long the daemon runs after its checks: until
	// it is done.
	keep   context.Context
	mu     sync.Mutex
	procs  []*exec.Cmd
	daemon *daemonProc
}

func (d *demo) run(ctx context.Context, count int) error {
	fmt.Printf("starting %d DHT nodes on 127.0.77.1-%d\n", count, count)
	first, err := d.startDHT(ctx, 1, "")
	if err != nil {
		return err
	}
	addrs := []string{first}
	for i := 2; i <= count; i++ {
		a, err := d.startDHT(ctx, i, first)
		if err != nil {
			return err
		}
		addrs = append(addrs, a)
	}
	// Give the later nodes' bootstrap lookups a moment to reach the earlier
	// ones; a lookup works without it, just from a thinner table.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}

	var ih [20]byte
	_, _ = rand.Read(ih[:])
	hash := hex.EncodeToString(ih[:])
	const port = "51413"
	fmt.Printf("\n$ node peers --announce %s %s   (from 127.0.78.1)\n", port, hash)
	if _, err := d.runNode(ctx, "peers", "--state-dir=", "--listen", "127.0.78.1:0", "--bootstrap", addrs[len(addrs)/2],
		"--announce", port, "--timeout", "30s", hash); err != nil {
		return fmt.Errorf("announce: %w", err)
	}

	link := "magnet:?xt=urn:btih:" + hash + "&dn=demo"
	fmt.Printf("\n$ node peers '%s'   (from 127.0.78.2)\n", link)
	out, err := d.runNode(ctx, "peers", "--state-dir=", "--listen", "127.0.78.2:0", "--bootstrap", addrs[len(addrs)-1],
		"--timeout", "30s", link)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	want := "127.0.78.1:" + port
	if !strings.Contains(out, want) {
		return fmt.Errorf("lookup printed %q, want a line %s", out, want)
	}
	fmt.Printf("\nfound the announced peer %s through the DHT\n", want)
	return d.fetchDemo(ctx, addrs)
}

// fetchDemo seeds generated content and fetches it by magnet link.
func (d *demo) fetchDemo(ctx context.Context, addrs []string) error {
	work, err := os.MkdirTemp("", "node-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src, dst := filepath.Join(work, "seed"), filepath.Join(work, "download")
	files := map[string]int{
		"demo/README.txt":            2_345,
		"demo/video/part1.bin":       20 << 20,
		"demo/video/part2.bin":       9<<20 + 12_345,
		"demo/photos/2026/a.jpg":     777_777,
		"demo/photos/2026/empty.txt": 0,
	}
	if err := generate(src, files); err != nil {
		return err
	}
	torrent := filepath.Join(work, "demo.torrent")
	fmt.Printf("\n$ node create demo -o demo.torrent\n")
	out, err := d.runNode(ctx, "create", filepath.Join(src, "demo"), "-o", torrent, "--node", addrs[0])
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	lines := strings.Fields(out)
	if len(lines) < 2 {
		return fmt.Errorf("create printed %q", out)
	}
	link := lines[1]

	fmt.Printf("\n$ node seed --dir seed demo.torrent   (in the background, on 127.0.79.1)\n")
	if err := d.startBackground(ctx, "seed", "--no-port-mapping", "--state-dir=", "--listen", "127.0.79.1:0", "--bootstrap", addrs[3], "--dir", src, torrent); err != nil {
		return err
	}
	fmt.Printf("\n$ node fetch --no-seed --dir download '%s'   (on 127.0.79.2)\n", link)
	if _, err := d.runNode(ctx, "fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--listen", "127.0.79.2:0", "--bootstrap", addrs[len(addrs)-2],
		"--dir", dst, "--timeout", "60s", link); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err := checkFiles(src, dst, files); err != nil {
		return err
	}
	fmt.Printf("\nall %d files match the originals byte for byte\n", len(files))
	return d.daemonDemo(ctx, addrs[len(addrs)/3], link, src, filepath.Join(work, "daemon"), files)
}

// checkFiles compares each of files under dst with its original under src.
func checkFiles(src, dst string, files map[string]int) error {
	for name := range files {
		a, err := fileHash(filepath.Join(src, name))
		if err != nil {
			return err
		}
		b, err := fileHash(filepath.Join(dst, name))
		if err != nil {
			return fmt.Errorf("downloaded %s: %w", name, err)
		}
		if a != b {
			return fmt.Errorf("%s differs from the original", name)
		}
	}
	return nil
}

// generate writes files of pseudo-random bytes under root.
func generate(root string, files map[string]int) error {
	r := mrand.NewChaCha8([32]byte{1, 2, 3})
	for name, size := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		b := make([]byte, size)
		_, _ = r.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func fileHash(p string) ([32]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// startBackground starts a long-running node command whose output goes to
// ours; stopAll ends it with the others.
func (d *demo) startBackground(ctx context.Context, args ...string) error {
	cmd := exec.Command(d.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	d.mu.Lock()
	d.procs = append(d.procs, cmd)
	d.mu.Unlock()
	return ctx.Err()
}

// startDHT starts `node dht` on 127.0.77.i and returns the address it
// bound, read from its first JSON log line.
func (d *demo) startDHT(ctx context.Context, i int, bootstrap string) (string, error) {
	cmd := exec.Command(d.bin, "dht", "--no-port-mapping", "--state-dir=", "--listen", fmt.Sprintf("127.0.77.%d:0", i),
		"--bootstrap", bootstrap, "--log-json", "--status-interval", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	d.mu.Lock()
	d.procs = append(d.procs, cmd)
	d.mu.Unlock()

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "dht node started" {
				addr <- l.Addr
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // keep draining so the child never blocks on a full pipe
	}()
	select {
	case a := <-addr:
		return a, nil
	case <-time.After(10 * time.Second):
		return "", fmt.Errorf("node %d did not start", i)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// runNode runs one node command to completion, echoing its output.
func (d *demo) runNode(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout = io.MultiWriter(os.Stdout, &out)
	cmd.Stderr = os.Stdout
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), ctx.Err()
	}
	return out.String(), err
}

// stopAll ends the processes this program started, by PID: SIGTERM, then
// SIGKILL for any still running after two seconds.
func (d *demo) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.daemon != nil {
		if err := d.daemon.stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		d.daemon = nil
	}
	var wg sync.WaitGroup
	for _, c := range d.procs {
		_ = c.Process.Signal(syscall.SIGTERM)
		wg.Add(1)
		go func(c *exec.Cmd) {
			defer wg.Done()
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				_ = c.Process.Kill()
				<-done
			}
		}(c)
	}
	wg.Wait()
	fmt.Printf("stopped the %d node processes it started\n", len(d.procs))
	if len(d.procs) == 0 {
		fmt.Fprintln(os.Stderr, errors.New("no process was started"))
	}
}
