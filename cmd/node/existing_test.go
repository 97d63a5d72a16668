package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"node/metadata"
)

// dotfileTorrent is a single-file torrent named .bashrc, written to a
// .torrent file; it returns the file's content too.
func dotfileTorrent(t *testing.T, nodes ...string) (mi *metadata.MetaInfo, torrent string, content []byte) {
	t.Helper()
	src := t.TempDir()
	writeContent(t, src, map[string]int{".bashrc": 200_000})
	content, err := os.ReadFile(filepath.Join(src, ".bashrc"))
	if err != nil {
		t.Fatal(err)
	}
	mi, err = metadata.Create(filepath.Join(src, ".bashrc"), metadata.CreateOptions{PieceLength: 32 << 10, Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	torrent = filepath.Join(t.TempDir(), "bashrc.torrent")
	if err := os.WriteFile(torrent, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return mi, torrent, content
}

// home is a download directory holding the user's own .bashrc, with an
// old mtime so that any rewrite would show.
func home(t *testing.T, data []byte) (dir, path string, mtime time.Time) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, ".bashrc")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime = time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return dir, path, mtime
}

// Fetching a torrent named .bashrc into a home directory does not destroy
// the user's .bashrc: the command stops with its own exit code, and the
// file keeps every byte and its mtime.
func TestFetchRefusesToOverwriteForeignFile(t *testing.T) {
	_, tor, _ := dotfileTorrent(t)
	mine := []byte("# my shell setup\nexport PATH=$HOME/bin:$PATH\nalias ll='ls -l'\n")
	dir, path, mtime := home(t, mine)
	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--bootstrap", "", "--listen", "127.0.171.100:0",
		"--timeout", "10s", "--dir", dir, tor)
	if code != exitExists || !strings.Contains(errOut, path) || !strings.Contains(errOut, "--overwrite") {
		t.Fatalf("exit %d, stderr %q; want %d naming %s and --overwrite", code, errOut, exitExists, path)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(mine) {
		t.Fatalf(".bashrc is now %q (%v)", got, err)
	}
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(mtime) {
		t.Fatalf(".bashrc mtime changed: %v", fi.ModTime())
	}
	if _, err := os.Stat(filepath.Join(dir, ".node")); !os.IsNotExist(err) {
		t.Fatalf("a resume record was written: %v", err)
	}
}

// The exit-7 message says nothing was written, so a refusal creates
// nothing: not the torrent's empty file, not its directory, no resume
// record.
func TestFetchForeignRefusalCreatesNothing(t *testing.T) {
	src := t.TempDir()
	writeContent(t, src, map[string]int{"pkg/a.bin": 100_000, "pkg/sub/empty": 0})
	mi, err := metadata.Create(filepath.Join(src, "pkg"), metadata.CreateOptions{PieceLength: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tor := filepath.Join(t.TempDir(), "pkg.torrent")
	if err := os.WriteFile(tor, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pkg", "a.bin"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--bootstrap", "", "--listen", "127.0.171.103:0",
		"--timeout", "10s", "--dir", dir, tor)
	if code != exitExists || !strings.Contains(errOut, "nothing was written") {
		t.Fatalf("exit %d, stderr %q; want %d saying nothing was written", code, errOut, exitExists)
	}
	var found []string
	err = filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			found = append(found, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(found, " ") != "pkg pkg/a.bin" {
		t.Fatalf("after the refusal the download directory holds %q, want only what was there", found)
	}
}

// The right data already in place is kept and verified: the download is
// complete at once, with no peer at all.
func TestFetchKeepsExistingRightData(t *testing.T) {
	_, tor, content := dotfileTorrent(t)
	dir, path, mtime := home(t, content)
	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--bootstrap", "", "--listen", "127.0.171.101:0",
		"--timeout", "10s", "--dir", dir, tor)
	if code != exitOK || !strings.Contains(errOut, "complete:") {
		t.Fatalf("exit %d, stderr %q; want complete", code, errOut)
	}
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(mtime) {
		t.Fatalf("the file was rewritten: mtime %v", fi.ModTime())
	}
}

// With --overwrite the user's file is replaced by the torrent's data.
func TestFetchOverwrite(t *testing.T) {
	boot := startNetwork(t, 171, 6)
	mi, tor, content := dotfileTorrent(t, boot)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, ".bashrc"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	seedInProcess(t, "127.0.171.50", boot, mi, src, 0)
	dir, path, _ := home(t, []byte("# my shell setup\n"))
	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--overwrite", "--bootstrap", boot, "--listen", "127.0.171.102:0",
		"--timeout", "30s", "--dir", dir, tor)
	if code != exitOK {
		t.Fatalf("--overwrite: exit %d\n%s", code, errOut)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(content) {
		t.Fatalf("after --overwrite: %d bytes, want the torrent's %d (%v)", len(got), len(content), err)
	}
}

// node seed of a 3,000-file torrent under a 256-descriptor limit verifies
// the data and serves every file, to a node fetch that checks them all.
func TestSeedManyFilesUnderFDLimit(t *testing.T) {
	bin := nodeBinary(t)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash for ulimit")
	}
	boot := startNetwork(t, 172, 6)
	src := t.TempDir()
	files := make(map[string]int, 3000)
	for i := range 3000 {
		files[fmt.Sprintf("d%02d/f%04d", i%23, i)] = 1 + i%37
	}
	writeContent(t, filepath.Join(src, "many"), files)
	mi, err := metadata.Create(filepath.Join(src, "many"), metadata.CreateOptions{PieceLength: 16 << 10, Nodes: []string{boot}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tor := filepath.Join(t.TempDir(), "many.torrent")
	if err := os.WriteFile(tor, b, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", `ulimit -n 256 && exec "$0" "$@"`,
		bin, "seed", "--no-port-mapping", "--state-dir=", "--json", "--listen", "127.0.172.50:0", "--dir", src, tor)
	// A seed still running at the deadline dumps its goroutines (SIGQUIT)
	// into the stderr the failure prints, rather than dying silently.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	verified := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev jsonEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "complete" {
				verified <- true
				break
			}
		}
		for sc.Scan() {
		}
		close(verified)
	}()
	if !<-verified {
		cmd.Wait()
		t.Fatalf("the seed under ulimit -n 256 did not verify its data: %s", stderr.String())
	}
	t.Logf("the seed verified its data after %v", time.Since(start).Round(time.Millisecond))
	dst := t.TempDir()
	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--listen", "127.0.172.100:0", "--dir", dst, "--timeout", "60s", tor)
	t.Logf("the fetch ended after %v", time.Since(start).Round(time.Millisecond))
	if code != exitOK {
		t.Fatalf("fetch from the limited seed: exit %d\n%s\nseed: %s", code, errOut, stderr.String())
	}
	sameFiles(t, filepath.Join(src, "many"), filepath.Join(dst, "many"))
	_ = cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	t.Logf("the seed exited after %v", time.Since(start).Round(time.Millisecond))
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == exitOK) {
		t.Fatalf("seed: %v\n%s", err, stderr.String())
	}
}
