package testutil

import (
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartOpentracker runs Debian's opentracker (HTTP and UDP on one port of
// ip, a loopback address) until the test ends, and returns its announce
// URLs. Debian builds it with a whitelist: only infoHashes are tracked. It
// skips the test if opentracker is not installed.
func StartOpentracker(t testing.TB, ip string, infoHashes ...[20]byte) (httpURL, udpURL string) {
	t.Helper()
	bin, err := exec.LookPath("opentracker")
	if err != nil {
		t.Skip("opentracker is not installed (Debian package opentracker)")
	}
	// It chroots to its directory and drops to the user nobody, who
	// must read the whitelist there.
	dir, err := os.MkdirTemp("", "opentracker")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// probe is one more whitelisted info-hash, for the readiness check
	// below alone: a started announce for it, which adds a peer to its
	// own swarm and no other, is refused until the whole whitelist is in.
	probe := [20]byte{0: 0xfe, 19: 0xfe}
	var wl strings.Builder
	for _, h := range append([][20]byte{probe}, infoHashes...) {
		wl.WriteString(hex.EncodeToString(h[:]) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "whitelist"), []byte(wl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, ip)
	cmd := exec.Command(bin, "-i", ip, "-p", port, "-P", port, "-d", dir, "-w", "whitelist")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	hp := net.JoinHostPort(ip, port)
	{
		// It reads the whitelist in the background after it starts
		// listening: wait until an announce of the probe is no longer
		// refused. (A stopped announce does not do: opentracker may
		// answer it before the whitelist is read.)
		u := "http://" + hp + "/announce?info_hash=" + url.QueryEscape(string(probe[:])) +
			"&peer_id=" + strings.Repeat("w", 20) + "&port=1&left=0&event=started"
		WaitFor(t, 10*time.Second, "opentracker serving the whitelist", func() bool {
			resp, err := http.Get(u)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return resp.StatusCode == http.StatusOK && !strings.Contains(string(b), "failure reason")
		})
	}
	return "http://" + hp + "/announce", "udp://" + hp + "/announce"
}

// freePort finds a port free for both TCP and UDP on ip.
func freePort(t testing.TB, ip string) string {
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}
