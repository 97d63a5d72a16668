//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"node/internal/testutil"
)

// transportsSeen are the transports the --json progress events of a
// fetch list its peers on.
func transportsSeen(t *testing.T, stdout string) map[string]bool {
	t.Helper()
	seen := make(map[string]bool)
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var ev struct {
			Event    string `json:"event"`
			UTPPeers int    `json:"utp_peers"`
			PeerList []struct {
				Addr      string `json:"addr"`
				Transport string `json:"transport"`
			} `json:"peer_list"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not a JSON event: %q", line)
		}
		n := 0
		for _, p := range ev.PeerList {
			seen[p.Transport] = true
			if p.Transport == "utp" {
				n++
			}
		}
		if n != ev.UTPPeers {
			t.Fatalf("event %q: utp_peers %d, the list has %d over uTP", line, ev.UTPPeers, n)
		}
	}
	return seen
}

// node seed and node fetch find each other through the DHT and connect
// over uTP (its port is the TCP one), which the --json progress events
// say; with --no-utp the fetch connects over TCP.
func TestFetchSeedOverUTP(t *testing.T) {
	bin := nodeBinary(t)
	boot := startNetwork(t, 126, 4)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "data"), map[string]int{"x.bin": 3 << 20})
	tor := filepath.Join(t.TempDir(), "x.torrent")
	if code, _, errOut := runCmd("create", filepath.Join(src, "data"), "-o", tor, "--piece-length", "65536"); code != exitOK {
		t.Fatalf("create: exit %d\n%s", code, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "seed", "--no-port-mapping", "--state-dir=", "--json", "--listen", "127.0.126.50:0", "--bootstrap", boot, "--dir", src, tor)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var seedOut lockedBuffer
	go func() { _, _ = io.Copy(&seedOut, stdout) }()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	// With --json the seed says it is seeding in a note event.
	testutil.WaitFor(t, 30*time.Second, "the seed to be seeding", func() bool {
		return strings.Contains(seedOut.String(), "seeding")
	})

	for i, noUTP := range []bool{false, true} {
		dst := t.TempDir()
		args := []string{"fetch", "--no-port-mapping", "--no-seed", "--json", "--listen", "127.0.126." + string(rune('1'+i)) + "00:0",
			"--bootstrap", boot, "--dir", dst, "--timeout", "30s", "--max-download-rate", "1MiB"}
		if noUTP {
			args = append(args, "--no-utp")
		}
		code, out, errOut := runCmd(append(args, tor)...)
		if code != exitOK {
			t.Fatalf("fetch (no uTP %v): exit %d\n%s", noUTP, code, errOut)
		}
		sameFiles(t, filepath.Join(src, "data"), filepath.Join(dst, "data"))
		seen := transportsSeen(t, out)
		want := map[bool]string{false: "utp", true: "tcp"}[noUTP]
		if len(seen) != 1 || !seen[want] {
			t.Fatalf("fetch (no uTP %v): peers over %v, want %s alone", noUTP, seen, want)
		}
		// The seed lists its peers too, with their transport, while
		// they are connected.
		testutil.WaitFor(t, 10*time.Second, "the seed's progress event listing a peer over "+want, func() bool {
			out := seedOut.String()
			return transportsSeen(t, out[:strings.LastIndexByte(out, '\n')+1])[want]
		})
	}
}

// Without cgo the binary builds, without uTP, and says so in fetch's
// --help.
func TestBuildsWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "node-nocgo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	out, _ := exec.Command(bin, "fetch", "--help").CombinedOutput()
	// The help wraps its text: compare words.
	if !strings.Contains(strings.Join(strings.Fields(string(out)), " "), "built without cgo, so it has no uTP") {
		t.Fatalf("fetch --help of a cgo-less build does not say it has no uTP:\n%s", out)
	}
}
