package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	tu "node/internal/testutil"
	"node/internal/testutil/swarmtest"
	"node/metadata"
	"node/peer"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// nodeBinary builds the command once per test run.
func nodeBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "node-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "node")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// writeContent makes a directory of files of seeded random bytes.
func writeContent(t testing.TB, root string, files map[string]int) { tu.WriteFiles(t, root, 3, files) }

func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	if err := sameFilesErr(a, b); err != nil {
		t.Fatal(err)
	}
}

// sameFilesErr reports the first file under a that b lacks or holds other
// bytes of.
func sameFilesErr(a, b string) error {
	return filepath.Walk(a, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs (%v)", rel, err)
		}
		return nil
	})
}

// slowListener caps what each accepted connection writes per second, so a
// download takes long enough to be interrupted half-way.
type slowListener struct {
	net.Listener
	bytesPerSec int
}

func (l slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowConn{Conn: c, bps: l.bytesPerSec}, nil
}

type slowConn struct {
	net.Conn
	bps int
}

func (c *slowConn) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k := min(len(b)-n, 16<<10)
		w, err := c.Conn.Write(b[n : n+k])
		n += w
		if err != nil {
			return n, err
		}
		time.Sleep(time.Duration(k) * time.Second / time.Duration(c.bps))
	}
	return n, nil
}

// seedInProcess serves mi's content from dir on ip, announcing through
// the DHT at boot; it runs until the test ends.
func seedInProcess(t *testing.T, ip, boot string, mi *metadata.MetaInfo, dir string, bps int) *peer.Torrent {
	t.Helper()
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if bps > 0 {
		l = slowListener{ln, bps}
	}
	return swarmtest.Seed(t, boot, peer.Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dir, Listener: l})
}

type jsonEvent struct {
	Event      string `json:"event"`
	Have       int    `json:"have"`
	Pieces     int    `json:"pieces"`
	BytesDone  int64  `json:"bytes_done"`
	Bytes      int64  `json:"bytes"`
	Downloaded int64  `json:"downloaded"`
	// The complete event's: the "transport/encryption" pairs that
	// delivered data, and how many connections did.
	Links     []string `json:"links"`
	DataConns int      `json:"data_conns"`
}

// A download killed with SIGKILL half-way and started again completes, and
// the second run fetches about the missing part only.
// Ctrl-C stops a download cleanly (exit 130), and the next run resumes.
func TestFetchInterruptAndResume(t *testing.T) {
	bin := nodeBinary(t)
	boot := startNetwork(t, 65, 6)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "data"), map[string]int{"x.bin": 4 << 20})
	mi, err := metadata.Create(filepath.Join(src, "data"), metadata.CreateOptions{PieceLength: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	seedInProcess(t, "127.0.65.50", boot, mi, src, 1<<20)
	dst := t.TempDir()
	args := []string{"fetch", "--no-port-mapping", "--state-dir=", "--json", "--no-seed", "--listen", "127.0.65.100:0", "--bootstrap", boot, "--dir", dst, "--timeout", "60s", mi.Magnet()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var done int64
	for sc.Scan() {
		var ev jsonEvent
		_ = json.Unmarshal(sc.Bytes(), &ev)
		if ev.Event == "progress" && ev.BytesDone > 0 {
			done = ev.BytesDone
			_ = cmd.Process.Signal(syscall.SIGINT)
			break
		}
	}
	for sc.Scan() {
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitSignal {
		t.Fatalf("after SIGINT: %v, want exit %d", err, exitSignal)
	}
	if _, err := os.Stat(filepath.Join(dst, ".node")); err != nil {
		t.Fatalf("no resume data after Ctrl-C: %v", err)
	}
	code, out, errOut := runCmd(append([]string{"fetch", "--no-port-mapping", "--state-dir=", "--json", "--no-seed", "--listen", "127.0.65.101:0"}, args[7:]...)...)
	if code != exitOK {
		t.Fatalf("second run: exit %d\n%s", code, errOut)
	}
	var meta jsonEvent
	for _, l := range strings.Split(out, "\n") {
		var ev jsonEvent
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Event == "metadata" {
			meta = ev
		}
	}
	if int64(meta.Have)*mi.Info.PieceLength < done {
		t.Fatalf("resumed %d pieces after %d bytes were done", meta.Have, done)
	}
	sameFiles(t, filepath.Join(src, "data"), filepath.Join(dst, "data"))
}

func TestFetchResumesAfterSIGKILL(t *testing.T) {
	bin := nodeBinary(t)
	boot := startNetwork(t, 63, 6)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "big"), map[string]int{"a.bin": 6 << 20, "sub/b.bin": 5<<20 + 12345})
	mi, err := metadata.Create(filepath.Join(src, "big"), metadata.CreateOptions{PieceLength: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	seedInProcess(t, "127.0.63.50", boot, mi, src, 3<<20)

	dst := t.TempDir()
	args := []string{"fetch", "--no-port-mapping", "--state-dir=", "--json", "--no-seed", "--listen", "127.0.63.100:0", "--bootstrap", boot,
		"--dir", dst, "--timeout", "60s", mi.Magnet()}
	run := func(killAt float64) (events []jsonEvent, killed bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev jsonEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("not a JSON event: %q", sc.Text())
			}
			events = append(events, ev)
			if killAt > 0 && ev.Event == "progress" && ev.Bytes > 0 && float64(ev.BytesDone) >= killAt*float64(ev.Bytes) {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
				break
			}
		}
		err = cmd.Wait()
		if !killed && err != nil {
			t.Fatalf("fetch: %v\n%s", err, stderr.String())
		}
		return events, killed
	}

	first, killed := run(0.3)
	if !killed {
		t.Fatal("the first run finished before it could be killed")
	}
	last := first[len(first)-1]
	if last.BytesDone == last.Bytes {
		t.Fatalf("killed too late: %+v", last)
	}
	second, _ := run(0)
	var meta, done *jsonEvent
	for i := range second {
		switch second[i].Event {
		case "metadata":
			meta = &second[i]
		case "complete":
			done = &second[i]
		}
	}
	if meta == nil || done == nil {
		t.Fatalf("second run events: %+v", second)
	}
	// The peers are gone when a --no-seed fetch completes; the event
	// still says what carried the data.
	if len(done.Links) == 0 || done.DataConns == 0 {
		t.Fatalf("complete event without the links that carried the data: %+v", *done)
	}
	for _, l := range done.Links {
		if !regexp.MustCompile(`^(tcp|utp)/(none|header|rc4)$`).MatchString(l) {
			t.Fatalf("complete event: link %q", l)
		}
	}
	sameFiles(t, filepath.Join(src, "big"), filepath.Join(dst, "big"))
	pieceLen := mi.Info.PieceLength
	if int64(meta.Have)*pieceLen < last.BytesDone {
		t.Fatalf("resumed %d pieces, but %d bytes were verified before the kill", meta.Have, last.BytesDone)
	}
	missing := mi.Info.Length - int64(meta.Have)*pieceLen
	// Slack: endgame duplicates of the last blocks.
	if done.Downloaded > missing+2*pieceLen {
		t.Fatalf("second run downloaded %d bytes for %d missing", done.Downloaded, missing)
	}
	t.Logf("killed at %d/%d bytes; resumed %d pieces; re-fetched %d bytes for %d missing",
		last.BytesDone, last.Bytes, meta.Have, done.Downloaded, missing)
}

func TestCreateInfoFetchSeed(t *testing.T) {
	boot := startNetwork(t, 64, 6)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "album"), map[string]int{"01.flac": 300_000, "cover/front.jpg": 70_000, "empty.txt": 0})
	tor := filepath.Join(t.TempDir(), "album.torrent")
	code, out, errOut := runCmd("create", filepath.Join(src, "album"), "-o", tor, "--node", boot, "--piece-length", "32768")
	if code != exitOK {
		t.Fatalf("create: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "magnet:?xt=urn:btih:"+lines[0]) {
		t.Fatalf("create printed %q", out)
	}
	code, out, _ = runCmd("info", tor)
	for _, want := range []string{"name:       album", "info-hash:  " + lines[0], "node:       " + boot, "cover/front.jpg", "70000"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Fatalf("info: exit %d, missing %q in\n%s", code, want, out)
		}
	}

	// node seed on the data, node fetch of the .torrent: the torrent's own
	// nodes key is the only bootstrap (no --bootstrap flag).
	ctx, cancel := context.WithCancel(context.Background())
	seedDone := make(chan int, 1)
	var seedOut, seedErr lockedBuffer
	go func() {
		seedDone <- run([]string{"seed", "--no-port-mapping", "--state-dir=", "--listen", "127.0.64.50:0", "--dir", src, tor}, &seedOut, &seedErr)
	}()
	t.Cleanup(func() {
		cancel()
	})
	_ = ctx
	dst := t.TempDir()
	code, _, errOut = runCmd("fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--listen", "127.0.64.100:0", "--dir", dst, "--timeout", "30s", tor)
	if code != exitOK {
		t.Fatalf("fetch: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "complete:") {
		t.Fatalf("no completion line in %q", errOut)
	}
	sameFiles(t, filepath.Join(src, "album"), filepath.Join(dst, "album"))

	// --metadata-only fetches just the info dictionary, by magnet link.
	got := filepath.Join(t.TempDir(), "fetched.torrent")
	code, _, errOut = runCmd("fetch", "--no-port-mapping", "--state-dir=", "--metadata-only", "-o", got, "--listen", "127.0.64.101:0", "--bootstrap", boot,
		"--dir", t.TempDir(), "--timeout", "30s", lines[1])
	if code != exitOK {
		t.Fatalf("metadata-only: exit %d\n%s", code, errOut)
	}
	code, out, _ = runCmd("info", got)
	if code != exitOK || !strings.Contains(out, "info-hash:  "+lines[0]) {
		t.Fatalf("info of the fetched .torrent: exit %d\n%s", code, out)
	}
	// Stop the seeder as a user would.
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

func TestFetchRefusesUnsafeTorrent(t *testing.T) {
	dir := t.TempDir()
	raw, err := bencodeInfo([]string{"..", "..", "etc", "cron.d", "x"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "evil.torrent")
	if err := os.WriteFile(path, append(append([]byte("d4:info"), raw...), 'e'), 0o644); err != nil {
		t.Fatal(err)
	}
	dl := filepath.Join(dir, "dl")
	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--state-dir=", "--bootstrap", "", "--dir", dl, path)
	if code != exitUnsafe || !strings.Contains(errOut, "nothing was written") {
		t.Fatalf("exit %d, stderr %q; want %d", code, errOut, exitUnsafe)
	}
	if _, err := os.Stat(dl); !os.IsNotExist(err) {
		t.Fatalf("the download directory was created: %v", err)
	}
}

func TestFetchBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.torrent")
	if err := os.WriteFile(garbage, []byte("this is not bencode"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd("fetch", "--no-port-mapping", "--state-dir=", "--bootstrap", "", garbage)
	if code != exitBadInput || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("garbage .torrent: exit %d, stderr %q: want %d and one line", code, errOut, exitBadInput)
	}
	code, _, _ = runCmd("fetch", "--no-port-mapping", "--state-dir=", "--bootstrap", "", "magnet:?xt=urn:btih:1234")
	if code != exitBadInput {
		t.Fatalf("bad magnet: exit %d", code)
	}
	code, _, _ = runCmd("fetch", "--no-port-mapping", "--state-dir=", "--bootstrap", "", "--seed-ratio", "-1", "magnet:?xt=urn:btih:"+strings.Repeat("ab", 20))
	if code != exitUsage {
		t.Fatalf("bad flag: exit %d", code)
	}
}

// bencodeInfo returns an info dict with one file at path.
func bencodeInfo(path []string) ([]byte, error) {
	type file struct {
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	return bencode.Marshal(struct {
		Files       []file `bencode:"files"`
		Name        string `bencode:"name"`
		PieceLength int64  `bencode:"piece length"`
		Pieces      string `bencode:"pieces"`
	}{[]file{{10, path}}, "x", 16384, string(make([]byte, 20))})
}

// A download killed with SIGKILL at 20 random moments and restarted each
// time completes with every byte right; what the seeder had to send again
// is reported (the goal: about one piece per kill).
func TestFetchSurvives20Kills(t *testing.T) {
	bin := nodeBinary(t)
	boot := startNetwork(t, 68, 6)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "d"), map[string]int{"a.bin": 16 << 20, "b/c.bin": 8<<20 + 4321})
	mi, err := metadata.Create(filepath.Join(src, "d"), metadata.CreateOptions{PieceLength: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	seeder := seedInProcess(t, "127.0.68.50", boot, mi, src, 8<<20)
	dst := t.TempDir()
	args := []string{"fetch", "--no-port-mapping", "--state-dir=", "--no-seed", "--listen", "127.0.68.100:0", "--bootstrap", boot, "--dir", dst, "--timeout", "60s", mi.Magnet()}
	r := rand.New(rand.NewPCG(20, 26))
	for kill := 1; kill <= 20; kill++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+r.IntN(300)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		cancel()
		if err == nil {
			t.Logf("run %d finished before its kill", kill)
			break
		}
	}
	code, _, errOut := runCmd(args...)
	if code != exitOK {
		t.Fatalf("final run: exit %d\n%s", code, errOut)
	}
	sameFiles(t, filepath.Join(src, "d"), filepath.Join(dst, "d"))
	s, err := seeder.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	refetched := s.Uploaded - mi.Info.Length
	t.Logf("20 kills: the seeder sent %d bytes for a %d-byte torrent: %d re-fetched, %.2f pieces of %d KiB per kill",
		s.Uploaded, mi.Info.Length, refetched, float64(refetched)/float64(mi.Info.PieceLength)/20, mi.Info.PieceLength>>10)
	// At a kill, what is lost is the pipeline in flight (1 MiB) plus the
	// pieces not yet verified; allow 3 pieces a kill before calling it a
	// regression.
	if refetched > 20*3*mi.Info.PieceLength {
		t.Fatalf("re-fetched %d bytes over 20 kills", refetched)
	}
}
