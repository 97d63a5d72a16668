package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"node/internal/testutil"
	"node/metadata"
	"node/peer/tracker"
)

// loopTracker is an honest HTTP tracker on loopback: it names every peer
// that announced (at its request's source address) to the others, and
// records the announces.
type loopTracker struct {
	*httptest.Server
	mu     sync.Mutex
	peers  map[netip.AddrPort]bool
	events []string // "addr event"
}

func newLoopTracker(t *testing.T) *loopTracker {
	lt := &loopTracker{peers: make(map[netip.AddrPort]bool)}
	lt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _ := netip.ParseAddrPort(r.RemoteAddr)
		port, _ := strconv.Atoi(r.URL.Query().Get("port"))
		me := netip.AddrPortFrom(from.Addr(), uint16(port))
		ev := r.URL.Query().Get("event")
		lt.mu.Lock()
		lt.events = append(lt.events, me.String()+" "+ev)
		var out []byte
		for p := range lt.peers {
			if p != me {
				out = binary.BigEndian.AppendUint16(append(out, p.Addr().AsSlice()...), p.Port())
			}
		}
		lt.peers[me] = ev != "stopped"
		lt.mu.Unlock()
		fmt.Fprintf(w, "d8:intervali1800e5:peers%d:%se", len(out), out)
	}))
	t.Cleanup(lt.Close)
	return lt
}

func (lt *loopTracker) announces() []string {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return slices.Clone(lt.events)
}

// node create --tracker writes announce and announce-list, its magnet
// link carries them, and node info lists them.
func TestCreateWithTrackers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	tor := filepath.Join(dir, "f.torrent")
	a, b, c := "http://127.0.0.1:1/announce", "udp://127.0.0.1:2", "https://127.0.0.1:3/announce"
	code, out, errOut := runCmd("create", "--tracker", a, "--tracker", b+","+c, filepath.Join(dir, "f"), "-o", tor)
	if code != exitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	raw, err := os.ReadFile(tor)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metadata.ParseMetaInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Announce != a || len(mi.AnnounceList) != 2 || !slices.Equal(mi.AnnounceList[1], []string{b, c}) {
		t.Errorf("announce %q, list %q", mi.Announce, mi.AnnounceList)
	}
	if !strings.Contains(out, "&tr=udp%3A%2F%2F127.0.0.1%3A2") {
		t.Errorf("magnet without its trackers: %s", out)
	}
	code, out, _ = runCmd("info", tor)
	if code != exitOK || !strings.Contains(out, "tracker:    "+b+" (tier 2)") {
		t.Errorf("info: exit %d\n%s", code, out)
	}
	if code, _, _ := runCmd("create", "--tracker", "ftp://x/announce", filepath.Join(dir, "f"), "-o", tor); code != exitUsage {
		t.Errorf("create with an ftp tracker: exit %d, want %d", code, exitUsage)
	}
	tg, err := loadTarget("magnet:?xt=urn:btih:" + mi.Info.InfoHash.String() + "&tr=" + a + "&tr=" + b)
	if err != nil || len(tg.trackers) != 2 || tg.trackers[1][0] != b {
		t.Errorf("magnet tiers %q, %v; want one tier per tr", tg.trackers, err)
	}
}

// With the DHT empty, node fetch finds node seed through the tracker
// their .torrent and magnet link name; node seed tells the tracker it
// stopped when interrupted. --no-trackers contacts none.
func TestFetchThroughTracker(t *testing.T) {
	bin := nodeBinary(t)
	lt := newLoopTracker(t)
	src := t.TempDir()
	writeContent(t, filepath.Join(src, "data"), map[string]int{"a.bin": 300 << 10, "b/c.bin": 70 << 10})
	tor := filepath.Join(t.TempDir(), "d.torrent")
	code, out, errOut := runCmd("create", "--tracker", lt.URL+"/announce", filepath.Join(src, "data"), "-o", tor)
	if code != exitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	magnet := strings.TrimSpace(strings.Split(strings.TrimSpace(out), "\n")[1])

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seed := exec.CommandContext(ctx, bin, "seed", "--no-port-mapping", "--state-dir=", "--listen", "127.0.79.50:0", "--bootstrap", "", "--dir", src, tor)
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	defer seed.Wait()
	defer seed.Process.Kill()
	testutil.WaitFor(t, 20*time.Second, "the seed's announce", func() bool {
		for _, a := range lt.announces() {
			if strings.HasPrefix(a, "127.0.79.50:") {
				return true
			}
		}
		return false
	})

	dst := t.TempDir()
	if code, _, errOut := runCmd("fetch", "--no-trackers", "--no-seed", "--listen", "127.0.79.51:0", "--bootstrap", "",
		"--dir", dst, "--timeout", "1s", magnet); code != exitNoPeers {
		t.Fatalf("fetch --no-trackers: exit %d, want %d (no peers)\n%s", code, exitNoPeers, errOut)
	}
	for _, a := range lt.announces() {
		if strings.HasPrefix(a, "127.0.79.51:") {
			t.Fatalf("fetch --no-trackers announced: %q", a)
		}
	}
	code, _, errOut = runCmd("fetch", "--no-seed", "--listen", "127.0.79.52:0", "--bootstrap", "", "--dir", dst, "--timeout", "30s", magnet)
	if code != exitOK {
		t.Fatalf("fetch: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "asking 1 tracker(s)") {
		t.Errorf("fetch did not say it asks the tracker:\n%s", errOut)
	}
	for _, f := range []string{"a.bin", "b/c.bin"} {
		want, _ := os.ReadFile(filepath.Join(src, "data", f))
		got, err := os.ReadFile(filepath.Join(dst, "data", f))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s differs: %v", f, err)
		}
	}
	seed.Process.Signal(syscall.SIGINT)
	var ee *exec.ExitError
	if err := seed.Wait(); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	ev := lt.announces()
	if !slices.ContainsFunc(ev, func(a string) bool { return strings.HasPrefix(a, "127.0.79.50:") && strings.HasSuffix(a, " stopped") }) {
		t.Errorf("no stopped announce from the seed: %q", ev)
	}
	if !slices.ContainsFunc(ev, func(a string) bool { return strings.HasPrefix(a, "127.0.79.52:") && strings.HasSuffix(a, " completed") }) {
		t.Errorf("no completed announce from the fetch: %q", ev)
	}
}

// A magnet link naming 500 trackers (magnet's parameter bound allows
// no more than about a thousand) is asked at
// tracker.MaxTrackers of them, repeats not counted, and node says so.
func TestMagnetTrackerCap(t *testing.T) {
	link := "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20)
	for i := range 500 {
		link += fmt.Sprintf("&tr=udp://127.0.0.1:%d/announce&tr=udp://127.0.0.1:1/announce", 1000+i)
	}
	tg, err := loadTarget(link)
	if err != nil {
		t.Fatal(err)
	}
	if tg.numTrackers() != tracker.MaxTrackers || tg.moreTrackers != 501-tracker.MaxTrackers {
		t.Errorf("%d trackers kept, %d more; want %d and %d", tg.numTrackers(), tg.moreTrackers, tracker.MaxTrackers, 501-tracker.MaxTrackers)
	}
	var buf strings.Builder
	useTrackers(tg, false, &reporter{stdout: &buf, stderr: &buf})
	if want := fmt.Sprintf("asking %d tracker(s) as well as the DHT; %d more ignored", tracker.MaxTrackers, 501-tracker.MaxTrackers); !strings.Contains(buf.String(), want) {
		t.Errorf("said %q, want %q", buf.String(), want)
	}
}

// Trackers node cannot ask (wss, other schemes, malformed) take no place
// under tracker.MaxTrackers: with 40 wss trackers first, the one udp
// tracker after them is the one asked.
func TestUnusableTrackersNotCounted(t *testing.T) {
	link := "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20)
	for i := range 40 {
		link += fmt.Sprintf("&tr=wss://127.0.0.1:%d/announce", 1000+i)
	}
	link += "&tr=udp://127.0.0.1:2000/announce"
	tg, err := loadTarget(link)
	if err != nil {
		t.Fatal(err)
	}
	if tg.numTrackers() != 1 || tg.moreTrackers != 0 || tg.unusableTrackers != 40 {
		t.Errorf("%d trackers kept (%v), %d more, %d unusable; want 1, 0 and 40", tg.numTrackers(), tg.trackers, tg.moreTrackers, tg.unusableTrackers)
	}
	var buf strings.Builder
	useTrackers(tg, false, &reporter{stdout: &buf, stderr: &buf})
	if want := "asking 1 tracker(s) as well as the DHT"; !strings.Contains(buf.String(), want) {
		t.Errorf("said %q, want %q", buf.String(), want)
	}
}
