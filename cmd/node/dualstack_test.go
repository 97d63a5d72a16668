package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"node/internal/testutil/dhtnet"
)

// The IPv6 DHT socket's default follows --listen, so that a node on a
// loopback address (every test, demo and benchmark) binds ::1, never a
// wildcard.
func TestIPv6ListenDefault(t *testing.T) {
	for _, tc := range []struct{ listen, listen6, want string }{
		{":6881", "", "[::]:6881"},
		{"0.0.0.0:0", "", "[::]:0"},
		{"127.0.0.5:0", "", "[::1]:0"},
		{"127.0.70.1:6881", "", "[::1]:6881"},
		{"192.0.2.1:6881", "", ""},
		{"none", "", "[::]:0"},
		{":6881", "none", ""},
		{":6881", "[::1]:7000", "[::1]:7000"},
	} {
		f := dhtFlags{listen: tc.listen, listen6: tc.listen6}
		if got, err := f.ipv6Listen(); err != nil || got != tc.want {
			t.Errorf("--listen %q --listen6 %q: %q, %v; want %q", tc.listen, tc.listen6, got, err, tc.want)
		}
	}
	for _, bad := range []string{"1.2.3.4:5", "[::ffff:1.2.3.4]:5", "nonsense"} {
		f := dhtFlags{listen: ":0", listen6: bad}
		if _, err := f.ipv6Listen(); err == nil {
			t.Errorf("--listen6 %q accepted", bad)
		}
	}
}

// node peers runs both sockets by default: an announce reaches both
// families' DHTs and a lookup finds the peer at both addresses; either
// socket can be turned off, not both.
func TestPeersDualStack(t *testing.T) {
	nodes := dhtnet.StartDual(t, 69, 12)
	boot := nodes[6].Addr().String() + "," + nodes[6].Addr6().String()
	ih := strings.Repeat("cd", 20)
	code, _, errOut := runCmd("peers", "--listen", "127.0.69.100:0", "--bootstrap", boot,
		"--announce", "7100", "--timeout", "20s", ih)
	if code != exitOK {
		t.Fatalf("announce exited %d: %s", code, errOut)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "127.0.69.101:0"}, "127.0.69.100:7100 [::1]:7100"},
		{[]string{"--listen", "none", "--listen6", "[::1]:0"}, "[::1]:7100"},
		{[]string{"--listen", "127.0.69.102:0", "--listen6", "none"}, "127.0.69.100:7100"},
	} {
		args := append(append([]string{"peers"}, tc.args...), "--bootstrap", boot, "--timeout", "20s", ih)
		code, out, errOut := runCmd(args...)
		if code != exitOK {
			t.Fatalf("%v exited %d: %s", tc.args, code, errOut)
		}
		got := strings.Fields(out)
		want := strings.Fields(tc.want)
		if len(got) != len(want) {
			t.Fatalf("%v: found %q, want %q", tc.args, got, want)
		}
		for _, w := range want {
			if !strings.Contains(out, w+"\n") {
				t.Fatalf("%v: found %q, want %q", tc.args, got, want)
			}
		}
	}
	if code, _, _ := runCmd("peers", "--listen", "none", "--listen6", "none", ih); code != exitUsage {
		t.Fatalf("both sockets off: exit %d, want %d", code, exitUsage)
	}
}

// fetch and seed run both DHT sockets by default, and a DHT reached over
// IPv6 alone is enough: with only an IPv6 bootstrap address, each joins
// the IPv6 DHT, its IPv4 socket joins through BEP 32 want, and the fetch
// finds the seed and completes.
func TestFetchSeedIPv6Bootstrap(t *testing.T) {
	nodes := dhtnet.StartDual(t, 70, 8)
	boot6 := nodes[4].Addr6().String()
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "v6"), map[string]int{"a.bin": 200_000})
	tor := filepath.Join(t.TempDir(), "v6.torrent")
	code, out, errOut := runCmd("create", filepath.Join(src, "v6"), "-o", tor, "--piece-length", "32768")
	if code != exitOK {
		t.Fatalf("create: %d %s", code, errOut)
	}
	link := strings.Split(strings.TrimSpace(out), "\n")[1]

	seedDone := make(chan int, 1)
	var seedOut, seedErr lockedBuffer
	go func() {
		seedDone <- run([]string{"seed", "--listen", "127.0.70.50:0", "--bootstrap", boot6, "--dir", src, tor}, &seedOut, &seedErr)
	}()
	dst := t.TempDir()
	code, _, errOut = runCmd("fetch", "--no-seed", "--listen", "127.0.70.100:0", "--bootstrap", boot6, "--dir", dst, "--timeout", "30s", link)
	if code != exitOK {
		t.Fatalf("fetch: exit %d\n%s\nseed: %s", code, errOut, seedErr.String())
	}
	sameFiles(t, filepath.Join(src, "v6"), filepath.Join(dst, "v6"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-seedDone:
		if c != exitOK {
			t.Fatalf("seed exited %d: %s", c, seedErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("seed did not stop on SIGINT")
	}
}
