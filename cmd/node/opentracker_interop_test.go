//go:build interop

package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"node/internal/testutil"
	"node/metadata"
	"node/peer/tracker"
)

// node seed announces to Debian's opentracker and node fetch finds it
// there, with no DHT (--bootstrap ""), over HTTP and over UDP.
func TestOpentrackerSeedAndFetch(t *testing.T) {
	bin := nodeBinary(t)
	// One torrent per protocol (the file names differ), so that the
	// second fetch cannot find the first seed.
	src := t.TempDir()
	var mis []*metadata.MetaInfo
	var hashes [][20]byte
	for _, name := range []string{"http", "udp"} {
		writeContent(t, filepath.Join(src, name), map[string]int{name + ".bin": 1 << 20, "b/c.bin": 100 << 10})
		mi, err := metadata.Create(filepath.Join(src, name), metadata.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mis = append(mis, mi)
		hashes = append(hashes, mi.Info.InfoHash)
	}
	httpURL, udpURL := testutil.StartOpentracker(t, "127.0.0.1", hashes...)
	for i, u := range []string{httpURL, udpURL} {
		name, mi := u[:strings.IndexByte(u, ':')], mis[i]
		t.Run(name, func(t *testing.T) {
			tor := filepath.Join(t.TempDir(), "d.torrent")
			code, out, errOut := runCmd("create", "--tracker", u, filepath.Join(src, name), "-o", tor)
			if code != exitOK {
				t.Fatalf("create: exit %d: %s", code, errOut)
			}
			magnet := strings.TrimSpace(strings.Split(strings.TrimSpace(out), "\n")[1])
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// opentracker names peers by the address their announce came
			// from; node announces from its --listen address.
			seedIP := []string{"127.0.79.60", "127.0.79.62"}[i]
			seed := exec.CommandContext(ctx, bin, "seed", "--no-port-mapping", "--state-dir=", "--listen", seedIP+":0", "--bootstrap", "", "--dir", src, tor)
			if err := seed.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { seed.Process.Kill(); seed.Wait() }()
			// Wait for the seed's announce: opentracker's scrape counts it.
			c := tracker.NewClient("test", netip.Addr{})
			testutil.WaitFor(t, 20*time.Second, "the seed in opentracker's scrape", func() bool {
				r, err := c.Scrape(ctx, u, mi.Info.InfoHash)
				return err == nil && r[0].Seeders > 0
			})
			dst := t.TempDir()
			start := time.Now()
			code, _, errOut = runCmd("fetch", "--no-seed", "--listen", []string{"127.0.79.61", "127.0.79.63"}[i]+":0",
				"--bootstrap", "", "--dir", dst, "--timeout", "30s", magnet)
			if code != exitOK {
				t.Fatalf("fetch: exit %d\n%s", code, errOut)
			}
			t.Logf("%s: fetched 1.1 MiB in %v", u, time.Since(start))
			for _, f := range []string{name + ".bin", "b/c.bin"} {
				want, _ := os.ReadFile(filepath.Join(src, name, f))
				got, err := os.ReadFile(filepath.Join(dst, name, f))
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("%s differs: %v", f, err)
				}
			}
		})
	}
}
