//go:build interop

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

	"node/dht"
	"node/internal/peertest"
	"node/internal/testutil"
	"node/internal/testutil/dhtnet"
	"node/metadata"
)

// Interop with WebTorrent (the webtorrent npm package, an independent
// JavaScript implementation with its own DHT, bittorrent-dht), run with
//
//	go test -tags interop -count=1 -run WebTorrent -v ./cmd/node/
//
// It needs Node.js 20 or later with npm, on PATH (WebTorrent 3 would need
// Node.js 22: 2.8.5 is pinned). The first run installs WebTorrent into
// testdata/webtorrent with npm ci from the committed lock file (the one
// time anything is fetched from outside: the npm registry, by npm); if
// that fails the tests skip. The lock file pins uint8-util 2.2.6
// (WebTorrent 2.8.5 crashes seeding with 2.3 and later), replaces
// webrtc-polyfill, whose node-datachannel needs a binary from outside,
// with the stub in stub/, and takes utp-native, whose npm package holds
// its linux-x64 binary (install scripts are not run: ip-set's fails).
//
// The tests themselves stay on loopback: wtpeer.js turns WebTorrent's
// trackers, LSD, UPnP, NAT-PMP and web seeds off, bootstraps its DHT only
// from our nodes, pins every socket it opens to one 127.x address and
// refuses any other destination. Each test runs twice: with WebTorrent's
// uTP off (then it speaks plain TCP only) and on. Our side is the node
// binary with its defaults: MSE prefer and uTP on, so over TCP alone our
// dials try uTP, then MSE, then plaintext. Subnets 127.0.220-227.x belong
// to these tests.

const (
	wtDir     = "testdata/webtorrent"
	wtVersion = "2.8.5"
	// wtInstallTimeout bounds npm ci (5-15 s here).
	wtInstallTimeout = 3 * time.Minute
	// wtBudget bounds each exchange, from starting the DHT to the last
	// check (2-12 s here); the WebTorrent script exits by itself after it.
	wtBudget = 90 * time.Second
)

// wtContent is what each test exchanges: several files, one of them not a
// multiple of any piece length, one in a subdirectory.
var wtContent = map[string]int{"a.bin": 3<<20 + 12345, "sub/b.bin": 700 << 10, "c.txt": 1234}

var (
	wtInstallOnce sync.Once
	wtInstallErr  error
)

// needWebTorrent skips the test unless node and npm are on PATH and
// WebTorrent is installed in wtDir (installing it first if missing), and
// returns the path of wtpeer.js.
func needWebTorrent(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"node", "npm"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not found (install Node.js 20 and npm): %v", p, err)
		}
	}
	out, err := exec.Command("node", "--version").Output()
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if n, aerr := strconv.Atoi(major); err != nil || aerr != nil || n < 20 {
		t.Skipf("node --version: %q %v: WebTorrent %s is tested with Node.js 20", v, err, wtVersion)
	}
	dir, err := filepath.Abs(wtDir)
	if err != nil {
		t.Fatal(err)
	}
	wtInstallOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "webtorrent", "package.json")); err == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), wtInstallTimeout)
		defer cancel()
		// --ignore-scripts: ip-set's install step fails; --omit=optional:
		// utp-native, which would need a prebuilt binary.
		cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--omit=optional", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			wtInstallErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
	if wtInstallErr != nil {
		t.Skipf("cannot install WebTorrent: %v", wtInstallErr)
	}
	var pkg struct{ Version string }
	raw, err := os.ReadFile(filepath.Join(dir, "node_modules", "webtorrent", "package.json"))
	if err == nil {
		err = json.Unmarshal(raw, &pkg)
	}
	if err != nil || pkg.Version != wtVersion {
		t.Fatalf("%s/node_modules holds webtorrent %q (%v), want %s: remove node_modules", dir, pkg.Version, err, wtVersion)
	}
	return filepath.Join(dir, "wtpeer.js")
}

// child is a process that prints one JSON object a line on stdout.
type child struct{ *testutil.Proc }

// startChild runs name's program with args in its own process group; it
// is killed (by its PID, with its group) and reaped when the test ends,
// its stderr printed if the test failed.
func startChild(t *testing.T, name string, prog string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return &child{testutil.StartProc(t, name, cmd, testutil.ProcOptions{Lines: true})}
}

// expect reads the child's events until one of kind, which it returns;
// every event read is passed to seen, if set. It fails the test on an
// "error" event, at EOF or after d.
func (c *child) expect(t *testing.T, kind string, d time.Duration, seen func(map[string]any)) map[string]any {
	t.Helper()
	var got map[string]any
	c.Await(t, d, fmt.Sprintf("%q event", kind), func(l string) bool {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			ev = map[string]any{"event": "text", "text": l}
		}
		if ev["event"] != "progress" {
			b, _ := json.Marshal(ev)
			t.Logf("%s: %s", c.Name, b)
		}
		if seen != nil {
			seen(ev)
		}
		if ev["event"] == "error" {
			t.Fatalf("%s: error %v", c.Name, ev)
		}
		got = ev
		return ev["event"] == kind
	})
	return got
}

// startWebTorrent runs wtpeer.js in mode on ip over transport ("tcp" or
// "utp"), its DHT bootstrapped from nodes, checks that its sockets are on
// ip, and returns its "listening" event too.
func startWebTorrent(t *testing.T, script, mode, transport, ip string, nodes []*dht.Node, dir, arg string, timeout time.Duration) (*child, map[string]any) {
	t.Helper()
	var ns []string
	for _, n := range nodes {
		ns = append(ns, n.Addr().String())
	}
	c := startChild(t, "webtorrent "+mode, "node", script, mode, ip, strings.Join(ns, ","), dir, arg,
		strconv.Itoa(int(timeout/time.Second)), transport)
	ev := c.expect(t, "listening", timeout, nil)
	for _, s := range []string{"tcp", "dht", "utp"} {
		a, _ := ev[s].(map[string]any)
		if a == nil && s == "utp" && transport == "tcp" {
			continue
		}
		if a == nil || a["address"] != ip {
			t.Fatalf("WebTorrent's %s socket is on %v, want %s", s, a, ip)
		}
	}
	return c, ev
}

// ourFlags are the node flags every run here shares: loopback only, no
// state, no port mapping; encryption and uTP at their defaults.
func ourFlags(ip string, boot *dht.Node) []string {
	return []string{"--json", "--log-level", "debug", "--state-dir=", "--no-port-mapping", "--listen", ip + ":0", "--bootstrap", boot.Addr().String()}
}

// peerListOf is the peer_list of a progress event, one string a peer,
// and whether one of them uses transport.
func peerListOf(ev map[string]any, transport string) ([]string, bool) {
	var out []string
	found := false
	ps, _ := ev["peer_list"].([]any)
	for _, p := range ps {
		m, _ := p.(map[string]any)
		down, _ := m["downloaded"].(float64)
		up, _ := m["uploaded"].(float64)
		out = append(out, fmt.Sprintf("%v %v %v outgoing=%v down=%.0f up=%.0f", m["addr"], m["transport"], m["encryption"], m["outgoing"], down, up))
		found = found || m["transport"] == transport
	}
	return out, found
}

// WebTorrent creates a torrent of our content and seeds it, announcing
// through our DHT; node fetch, given only a magnet link with the bare
// info-hash, finds it through the DHT, fetches the info dictionary and
// every piece with its defaults, and every byte matches. Over TCP alone
// our dial tries uTP and MSE first, which WebTorrent answers with
// neither; with its uTP on, the connection is uTP.
func TestWebTorrentSeedsWeFetch(t *testing.T) {
	for i, transport := range []string{"tcp", "utp"} {
		t.Run(transport, func(t *testing.T) { webTorrentSeeds(t, transport, 220+4*i) })
	}
}

// node seed announces to our DHT first; WebTorrent, started after with
// only a magnet link and our DHT nodes, finds it in its first lookup,
// fetches the info dictionary (our BEP 9 serving) and every piece, and
// its files match ours. With its uTP on, it dials us with uTP.
func TestWeSeedWebTorrentFetches(t *testing.T) {
	for i, transport := range []string{"tcp", "utp"} {
		t.Run(transport, func(t *testing.T) { webTorrentFetches(t, transport, 222+4*i) })
	}
}

// webTorrentSeeds is TestWebTorrentSeedsWeFetch over transport, our DHT
// on 127.0.<subnet>.x, the peers on 127.0.<subnet+1>.x.
func webTorrentSeeds(t *testing.T, transport string, subnet int) {
	script := needWebTorrent(t)
	bin := nodeBinary(t)
	end := time.Now().Add(wtBudget)
	left := func() time.Duration { return time.Until(end) }
	nodes := dhtnet.Start(t, subnet, 8)
	src, dst := t.TempDir(), t.TempDir()
	writeContent(t, filepath.Join(src, "content"), wtContent)

	wtIP, ourIP := fmt.Sprintf("127.0.%d.1", subnet+1), fmt.Sprintf("127.0.%d.2", subnet+1)
	wt, _ := startWebTorrent(t, script, "seed", transport, wtIP, nodes, src, "content", left())
	ev := wt.expect(t, "seeding", left(), nil)
	var ih metadata.InfoHash
	if b, err := hex.DecodeString(fmt.Sprint(ev["info_hash"])); err != nil || len(b) != len(ih) {
		t.Fatalf("bad info-hash %v from WebTorrent", ev["info_hash"])
	} else {
		copy(ih[:], b)
	}
	port, _ := ev["port"].(float64)
	// Its announce ("announced" may come before "seeding"), seen in
	// our DHT.
	seedAddr := netip.AddrPortFrom(netip.MustParseAddr(wtIP), uint16(port))
	if _, err := peertest.WaitAnnounced(context.Background(), nodes[6], ih, seedAddr, left()); err != nil {
		t.Fatal(err)
	}

	magnet := fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=content", ih[:])
	start := time.Now()
	// Slowed to about 4 s, so that progress events (one a second) list
	// the peer while it is connected.
	ours := startChild(t, "node fetch", bin, append([]string{"fetch", "--no-seed", "--dir", dst, "--timeout", strconv.Itoa(int(left()/time.Second)) + "s", "--max-download-rate", "1MiB"},
		append(ourFlags(ourIP, nodes[3]), magnet)...)...)
	var peers []string
	sawTransport := false
	seen := func(ev map[string]any) {
		ps, found := peerListOf(ev, transport)
		if len(ps) > 0 {
			peers = ps
		}
		sawTransport = sawTransport || found
	}
	meta := ours.expect(t, "metadata", left(), seen)
	done := ours.expect(t, "complete", left(), seen)
	ours.ExitsOK(t, left())
	compareTrees(t, filepath.Join(src, "content"), filepath.Join(dst, "content"))
	if done["hash_fails"] != 0.0 {
		t.Fatalf("complete event %v: hash failures", done)
	}
	t.Logf("our log of WebTorrent:\n%s", linesWith(ours.Stderr.String(), seedAddr.String()))
	t.Logf("WebTorrent seeds (%s), node fetches %.0f bytes: metadata after %.0f ms, complete after %.0f ms (process start to exit %v)",
		transport, done["bytes"], meta["after_ms"], done["after_ms"], time.Since(start).Round(time.Millisecond))
	t.Logf("our peer_list: %v", peers)
	if !sawTransport {
		t.Fatalf("no progress event listed a %s peer", transport)
	}
	w := wt.expect(t, "wire", left(), nil)
	t.Logf("WebTorrent's side of the connection: %v from %v", w["type"], w["addr"])
	if w["type"] != transport+"Incoming" {
		t.Fatalf("WebTorrent saw a %v connection, want %sIncoming", w["type"], transport)
	}
}

// webTorrentFetches is TestWeSeedWebTorrentFetches over transport, our
// DHT on 127.0.<subnet>.x, the peers on 127.0.<subnet+1>.x.
func webTorrentFetches(t *testing.T, transport string, subnet int) {
	script := needWebTorrent(t)
	bin := nodeBinary(t)
	end := time.Now().Add(wtBudget)
	left := func() time.Duration { return time.Until(end) }
	nodes := dhtnet.Start(t, subnet, 8)
	src, dst := t.TempDir(), t.TempDir()
	writeContent(t, filepath.Join(src, "content"), wtContent)
	tor := filepath.Join(t.TempDir(), "content.torrent")
	if code, _, errOut := runCmd("create", filepath.Join(src, "content"), "-o", tor); code != exitOK {
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
	ih := mi.Info.InfoHash

	seedIP, wtIP := fmt.Sprintf("127.0.%d.1", subnet+1), fmt.Sprintf("127.0.%d.2", subnet+1)
	seed := startChild(t, "node seed", bin, append([]string{"seed", "--dir", src}, append(ourFlags(seedIP, nodes[0]), tor)...)...)
	// The seed announces once its data is verified; WebTorrent looks up
	// once at start, so it must come after.
	ctx, cancel := context.WithTimeout(context.Background(), left())
	defer cancel()
	for {
		if ps := peertest.Lookup(ctx, nodes[5], ih); len(ps) > 0 {
			t.Logf("the DHT has %v for %v", ps, ih)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node seed not announced: %v", ctx.Err())
		case <-seed.Done():
			t.Fatalf("node seed exited: %v", seed.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}

	magnet := fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=content", ih[:])
	wt, listening := startWebTorrent(t, script, "fetch", transport, wtIP, nodes, dst, magnet, left())
	// Its times from its own clock, from the moment it listens (its
	// modules loaded, which takes about half a second here).
	since := func(ev map[string]any) time.Duration {
		ms, _ := ev["ms"].(float64)
		l, _ := listening["ms"].(float64)
		return time.Duration(ms-l) * time.Millisecond
	}
	var wires []string
	seen := func(ev map[string]any) {
		if ev["event"] == "wire" {
			wires = append(wires, fmt.Sprint(ev["type"]))
		}
	}
	meta := wt.expect(t, "metadata", left(), seen)
	done := wt.expect(t, "done", left(), seen)
	wt.ExitsOK(t, left())
	compareTrees(t, filepath.Join(src, "content"), filepath.Join(dst, "content"))
	t.Logf("our log of WebTorrent:\n%s", linesWith(seed.Stderr.String(), wtIP))
	t.Logf("node seeds, WebTorrent (%s) fetches %.0f bytes: metadata after %v, done after %v (from its listening), its connections %v",
		transport, done["bytes"], since(meta), since(done), wires)
	if !slices.Contains(wires, transport+"Outgoing") {
		t.Fatalf("WebTorrent's connections %v: want %sOutgoing", wires, transport)
	}
}

// linesWith is the lines of s that contain sub.
func linesWith(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// compareTrees fails the test unless the files under a and b are the same
// set with the same bytes.
func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	read := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			m[rel], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ma, mb := read(a), read(b)
	if len(ma) != len(mb) {
		t.Fatalf("%s has %d files, %s %d", a, len(ma), b, len(mb))
	}
	for p, x := range ma {
		y, ok := mb[p]
		if !ok || string(x) != string(y) {
			t.Fatalf("%s differs (present %v, %d and %d bytes)", p, ok, len(x), len(y))
		}
	}
}
