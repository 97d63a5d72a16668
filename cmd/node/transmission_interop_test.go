//go:build interop

package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"node/internal/testutil"
)

// Transmission 3.00 (Debian transmission-daemon) and node exchange
// torrents through the DHT alone, in both directions: Transmission seeds
// and node fetch downloads by magnet, node seed seeds and Transmission
// downloads by magnet.
//
// Transmission ignores DHT nodes and peers at 127.x, and while its DHT
// is small it looks up dht.transmissionbt.com. So the whole swarm (16
// node dht processes, Transmission, our fetch and seed) runs in a network
// namespace the test makes with nothing but lo, to which it adds a second
// range, trRange. That range is private, not 198.18.0.0/15: our DHT
// applies BEP 42 outside the local and private ranges (IDs must match the
// address, one node of a /24 per bucket), and a swarm of fresh nodes on
// such addresses only forms once each has adopted an ID from a minute of
// other nodes' votes. Transmission refuses only 0/8, 127/8 and 224/3.

const (
	trRange    = "10.77.0.0/16"
	trDHTNodes = 16
	// trDeadline bounds each direction: Transmission starts searching
	// once it knows more than 8 good nodes, and announces as a seeder
	// only with about 12. Over uTP, Transmission 3.00 leaves the messages
	// that came in the same read as our handshake unparsed until more
	// bytes come (our keep-alive, 90 s on), so its first connection to
	// node seed yields the metadata only then.
	trDeadline = 4 * time.Minute
)

// trVariant is one Transmission configuration, run in both directions.
type trVariant struct {
	name       string
	utp        bool
	encryption int // Transmission's settings.json: 0 allow plaintext, 1 prefer encryption, 2 require it
	net        int // third byte of this variant's addresses in trRange
}

func TestTransmission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the Transmission test makes a network namespace: it needs root")
	}
	for _, p := range []string{"ip", "transmission-daemon", "transmission-remote"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("the Transmission test needs %s (Debian: iproute2, transmission-daemon): %v", p, err)
		}
	}
	bin := nodeBinary(t)
	ns := newLoOnlyNS(t)
	checkLoOnly(t, ns)
	dht := startDHTIn(t, ns, bin)

	for _, v := range []trVariant{
		{name: "tcp", utp: false, encryption: 1, net: 200},
		{name: "utp-encrypted", utp: true, encryption: 2, net: 201},
	} {
		t.Run(v.name, func(t *testing.T) {
			tr := startTransmission(t, ns, v, dht.addrs)
			t.Run("transmission-seeds", func(t *testing.T) { trSeedsNodeFetches(t, bin, ns, tr, v, dht.addrs) })
			t.Run("node-seeds", func(t *testing.T) { nodeSeedsTrFetches(t, bin, ns, tr, v, dht) })
		})
	}
}

// newLoOnlyNS makes a network namespace with lo up and trRange on it,
// removed when the test ends, after the processes started in it (cleanups
// run last-in first-out).
func newLoOnlyNS(t *testing.T) string {
	t.Helper()
	var b [2]byte
	_, _ = rand.Read(b[:])
	ns := fmt.Sprintf("nodetr-%04x", binary.BigEndian.Uint16(b[:]))
	trRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	trRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	p := netip.MustParsePrefix(trRange)
	trRun(t, "ip", "-n", ns, "addr", "add", netip.PrefixFrom(p.Addr().Next(), p.Bits()).String(), "dev", "lo")
	return ns
}

// checkLoOnly proves that nothing started in ns can reach beyond it: its
// only interface is lo, and every route (all tables, both families) goes
// through lo to loopback or trRange.
func checkLoOnly(t *testing.T, ns string) {
	t.Helper()
	links := strings.Split(strings.TrimSpace(trRun(t, "ip", "-n", ns, "-o", "link", "show")), "\n")
	if len(links) != 1 || len(strings.Fields(links[0])) < 2 || strings.Fields(links[0])[1] != "lo:" {
		t.Fatalf("namespace %s has interfaces %q, want lo alone", ns, links)
	}
	allowed := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix(trRange), netip.MustParsePrefix("::1/128")}
	for _, fam := range []string{"-4", "-6"} {
		out := strings.TrimSpace(trRun(t, "ip", "-n", ns, fam, "-o", "route", "show", "table", "all"))
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			dst := f[0]
			switch dst {
			case "local", "broadcast", "unicast", "multicast", "anycast":
				dst = f[1]
			}
			p, err := netip.ParsePrefix(dst)
			if err != nil {
				a, aerr := netip.ParseAddr(dst)
				if aerr != nil {
					t.Fatalf("namespace %s: route %q: destination %q is not an address (a default route?)", ns, line, dst)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			inside := false
			for _, a := range allowed {
				inside = inside || (a.Bits() <= p.Bits() && a.Contains(p.Addr()))
			}
			dev := ""
			for i := range f[:len(f)-1] {
				if f[i] == "dev" {
					dev = f[i+1]
				}
			}
			if !inside || dev != "lo" {
				t.Fatalf("namespace %s has route %q beyond lo, loopback and %s", ns, line, trRange)
			}
		}
	}
}

func trRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	return string(out)
}

// startInNS starts a program in the namespace; the test ends it by its
// PID (SIGTERM, then SIGKILL) unless it ended before.
func startInNS(t *testing.T, ns string, args ...string) *testutil.Proc {
	t.Helper()
	// ip netns exec execs the program: the PID is the program's.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return testutil.StartProc(t, fmt.Sprintf("%q", args), cmd, testutil.ProcOptions{Signal: syscall.SIGTERM, Grace: 10 * time.Second})
}

// pollEvery checks cond every interval until it holds, failing the test
// after d. The checks here run programs (transmission-remote), too costly
// for testutil.WaitFor's pace.
func pollEvery(t *testing.T, d, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still waiting for %s", d, what)
		}
		<-tick.C
	}
}

// trAddr is an address in trRange: 10.77.<net>.<host>.
func trAddr(net, host int) string {
	a := netip.MustParsePrefix(trRange).Addr().As4()
	return netip.AddrFrom4([4]byte{a[0], a[1], byte(net), byte(host)}).String()
}

// trDHT is the namespace's DHT: node dht processes, one per /24 of
// trRange.
type trDHT struct {
	addrs []string
	procs []*testutil.Proc
}

// startDHTIn starts trDHTNodes node dht processes in ns and returns once
// each knows half the others.
func startDHTIn(t *testing.T, ns, bin string) *trDHT {
	t.Helper()
	d := &trDHT{}
	for i := 1; i <= trDHTNodes; i++ {
		d.addrs = append(d.addrs, trAddr(i, 1)+":6881")
	}
	for _, a := range d.addrs {
		d.procs = append(d.procs, startInNS(t, ns, bin, "dht", "--no-port-mapping", "--state-dir=", "--listen", a,
			"--bootstrap", strings.Join(d.addrs[:2], ","), "--log-json", "--status-interval", "250ms"))
	}
	pollEvery(t, 60*time.Second, 250*time.Millisecond, "the DHT nodes to know each other", func() bool {
		for _, p := range d.procs {
			if lastStatus(p.Stderr.String()).Nodes < trDHTNodes/2 {
				return false
			}
		}
		return true
	})
	return d
}

// stored is how many announces (peers under an info-hash) the nodes hold
// in all, as their last status lines say.
func (d *trDHT) stored() int {
	n := 0
	for _, p := range d.procs {
		n += lastStatus(p.Stderr.String()).Peers
	}
	return n
}

type dhtStatus struct {
	Msg   string `json:"msg"`
	Nodes int    `json:"nodes"`
	Peers int    `json:"peers"`
}

// lastStatus is the last status line of a node dht's JSON log.
func lastStatus(log string) dhtStatus {
	last := dhtStatus{Nodes: -1}
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var l dhtStatus
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "status" {
			last = l
		}
	}
	return last
}

// transmission is one transmission-daemon in the namespace.
type transmission struct {
	ns, ip, rpc string
}

func startTransmission(t *testing.T, ns string, v trVariant, boot []string) *transmission {
	t.Helper()
	cfg := t.TempDir()
	tr := &transmission{ns: ns, ip: trAddr(v.net, 1), rpc: "127.0.0.1:" + strconv.Itoa(9091+v.net)}
	settings := map[string]any{
		"dht-enabled":                 true,
		"lpd-enabled":                 false,
		"port-forwarding-enabled":     false,
		"utp-enabled":                 v.utp,
		"encryption":                  v.encryption,
		"bind-address-ipv4":           tr.ip,
		"bind-address-ipv6":           "::1",
		"peer-port":                   51413,
		"peer-port-random-on-start":   false,
		"rpc-enabled":                 true,
		"rpc-bind-address":            "127.0.0.1",
		"rpc-port":                    9091 + v.net,
		"rpc-authentication-required": false,
		"rpc-whitelist-enabled":       false,
		"rpc-host-whitelist-enabled":  false,
		"download-dir":                filepath.Join(cfg, "downloads"),
		"incomplete-dir-enabled":      false,
		"rename-partial-files":        false,
		"start-added-torrents":        true,
		"ratio-limit-enabled":         false,
		"idle-seeding-limit-enabled":  false,
		"blocklist-enabled":           false,
		"message-level":               2,
	}
	b, _ := json.MarshalIndent(settings, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg, "settings.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var bs strings.Builder
	for _, a := range boot {
		host, port, _ := strings.Cut(a, ":")
		fmt.Fprintf(&bs, "%s %s\n", host, port)
	}
	if err := os.WriteFile(filepath.Join(cfg, "dht.bootstrap"), []byte(bs.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	startInNS(t, ns, "transmission-daemon", "--foreground", "--config-dir", cfg, "--log-debug")
	pollEvery(t, 20*time.Second, 200*time.Millisecond, "Transmission's RPC", func() bool {
		_, err := tr.remote("-l")
		return err == nil
	})
	return tr
}

// remote runs transmission-remote in the namespace, against this daemon.
func (tr *transmission) remote(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", tr.ns, "transmission-remote", tr.rpc}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("transmission-remote %q: %v: %s", args, err, out)
	}
	return string(out), nil
}

func (tr *transmission) mustRemote(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tr.remote(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	trPercentDone = regexp.MustCompile(`(?m)^\s*Percent Done: ([0-9.]+)%`)
	trPieceCount  = regexp.MustCompile(`(?m)^\s*Piece Count: ([0-9]+)`)
)

// info is what transmission-remote -i says of a torrent: whether it has
// the metadata, and how much of the data.
func (tr *transmission) info(t *testing.T, hash string) (haveInfo bool, percent float64) {
	t.Helper()
	out := tr.mustRemote(t, "-t", hash, "-i")
	if m := trPieceCount.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		haveInfo = n > 0
	}
	if m := trPercentDone.FindStringSubmatch(out); m != nil {
		percent, _ = strconv.ParseFloat(m[1], 64)
	}
	return haveInfo, percent
}

// peerFlags is Transmission's flags for each of a torrent's peers at ip
// (transmission-remote -pi: T uTP, E encrypted, I incoming, H found
// through the DHT, D downloading from it, U uploading to it).
func (tr *transmission) peerFlags(t *testing.T, hash, ip string) []string {
	t.Helper()
	var flags []string
	for _, line := range strings.Split(tr.mustRemote(t, "-t", hash, "-pi"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == ip {
			flags = append(flags, f[1])
		}
	}
	return flags
}

// trTorrent makes a small torrent of 12 MiB in two files under
// src/name, with node create.
func trTorrent(t *testing.T, src, name string) (torrent, magnet, hash string) {
	t.Helper()
	writeContent(t, filepath.Join(src, name), map[string]int{"big.bin": 12<<20 - 300<<10, "sub/small.bin": 300<<10 + 7})
	torrent = filepath.Join(t.TempDir(), name+".torrent")
	code, out, errOut := runCmd("create", filepath.Join(src, name), "-o", torrent)
	if code != exitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || len(strings.TrimSpace(lines[0])) != 40 {
		t.Fatalf("create printed %q", out)
	}
	return torrent, strings.TrimSpace(lines[1]), strings.TrimSpace(lines[0])
}

// ourEvents reads node's --json events: when it had the metadata and the
// whole torrent, and each peer's transport and encryption as the
// progress events list them (those that sent us data).
type ourEvents struct {
	metadataAfter, completeAfter time.Duration
	complete                     bool
	peers                        map[string]string // addr: "transport/encryption"
	rates                        []int64           // KB/s, each second from the first byte
}

func parseEvents(stdout string) ourEvents {
	ev := ourEvents{peers: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Event    string `json:"event"`
			AfterMS  int64  `json:"after_ms"`
			Done     int64  `json:"bytes_done"`
			Rate     int64  `json:"rate"`
			PeerList []struct {
				Addr       string `json:"addr"`
				Transport  string `json:"transport"`
				Encryption string `json:"encryption"`
				Downloaded int64  `json:"downloaded"`
			} `json:"peer_list"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch e.Event {
		case "metadata":
			ev.metadataAfter = time.Duration(e.AfterMS) * time.Millisecond
		case "complete":
			ev.complete = true
			ev.completeAfter = time.Duration(e.AfterMS) * time.Millisecond
		case "progress":
			if e.Done > 0 {
				ev.rates = append(ev.rates, e.Rate/1000)
			}
			for _, p := range e.PeerList {
				if p.Downloaded > 0 {
					ev.peers[p.Addr] = p.Transport + "/" + p.Encryption
				}
			}
		}
	}
	return ev
}

// connections is what node's debug log says of each peer connection with
// a peer at ip: "transport/encryption in|out".
func connections(log, ip string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg        string `json:"msg"`
			Peer       string `json:"peer"`
			Outgoing   bool   `json:"outgoing"`
			Transport  string `json:"transport"`
			Encryption string `json:"encryption"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "peer connected" {
			continue
		}
		if ap, err := netip.ParseAddrPort(l.Peer); err != nil || ap.Addr().String() != ip {
			continue
		}
		dir := "in"
		if l.Outgoing {
			dir = "out"
		}
		out = append(out, l.Transport+"/"+l.Encryption+" "+dir)
	}
	return out
}

// trSeedsNodeFetches: Transmission seeds a torrent; node fetch, knowing
// only its magnet link and the DHT, downloads every byte.
func trSeedsNodeFetches(t *testing.T, bin, ns string, tr *transmission, v trVariant, boot []string) {
	src := t.TempDir()
	name := "from-transmission-" + v.name
	torrent, magnet, hash := trTorrent(t, src, name)
	tr.mustRemote(t, "-a", torrent, "-w", src)
	pollEvery(t, time.Minute, 200*time.Millisecond, "Transmission to verify the data it seeds", func() bool {
		_, pct := tr.info(t, hash)
		return pct == 100
	})

	dst := t.TempDir()
	ourIP := trAddr(v.net, 2)
	start := time.Now()
	fetch := startInNS(t, ns, bin, "fetch", "--no-seed", "--json", "--log-json", "--log-level", "debug",
		"--no-port-mapping", "--state-dir=", "--listen", ourIP+":6881", "--bootstrap", strings.Join(boot[:4], ","),
		"--dir", dst, "--timeout", trDeadline.String(), magnet)
	select {
	case <-fetch.Done():
	case <-time.After(trDeadline + 10*time.Second):
		t.Fatalf("node fetch still running after %v", trDeadline)
	}
	if err := fetch.Err(); err != nil {
		t.Fatalf("node fetch: %v", err)
	}
	ev := parseEvents(fetch.Stdout.String())
	if !ev.complete {
		t.Fatalf("node fetch exited without a complete event")
	}
	sameFiles(t, filepath.Join(src, name), filepath.Join(dst, name))
	conns := connections(fetch.Stderr.String(), tr.ip)
	t.Logf("Transmission (uTP %v, encryption %d) seeds, node fetch: metadata after %v, complete after %v (wall %v); data from %v; connections with Transmission: %v",
		v.utp, v.encryption, ev.metadataAfter, ev.completeAfter, time.Since(start).Round(time.Millisecond), ev.peers, conns)
	t.Logf("node fetch's download rate each second, KB/s: %v", ev.rates)
	checkTransports(t, v, ev.peers)
}

// nodeSeedsTrFetches: node seed seeds a torrent; Transmission, given its
// magnet link, finds node through the DHT and downloads every byte.
func nodeSeedsTrFetches(t *testing.T, bin, ns string, tr *transmission, v trVariant, dht *trDHT) {
	src := t.TempDir()
	name := "from-node-" + v.name
	torrent, magnet, hash := trTorrent(t, src, name)
	ourIP := trAddr(v.net, 3)
	before := dht.stored()
	seedStart := time.Now()
	seed := startInNS(t, ns, bin, "seed", "--json", "--log-json", "--log-level", "debug",
		"--no-port-mapping", "--state-dir=", "--listen", ourIP+":6881", "--bootstrap", strings.Join(dht.addrs[:4], ","),
		"--dir", src, torrent)
	// Transmission looks a torrent up in the DHT once, then every 25 to
	// 28 minutes: it finds a seed that announced before that lookup.
	pollEvery(t, time.Minute, 100*time.Millisecond, "node seed's announce in the DHT", func() bool {
		return strings.Contains(seed.Stdout.String(), `"event":"complete"`) && dht.stored() > before
	})
	announced := time.Since(seedStart)

	dl := t.TempDir()
	start := time.Now()
	tr.mustRemote(t, "-a", magnet, "-w", dl)
	var metadataAfter, completeAfter time.Duration
	flags := map[string]bool{}
	pollEvery(t, trDeadline, 250*time.Millisecond, "Transmission to download from node seed", func() bool {
		haveInfo, pct := tr.info(t, hash)
		if haveInfo && metadataAfter == 0 {
			metadataAfter = time.Since(start)
		}
		for _, f := range tr.peerFlags(t, hash, ourIP) {
			flags[f] = true
		}
		if pct == 100 {
			completeAfter = time.Since(start)
			return true
		}
		return false
	})
	// Transmission writes through a cache it flushes on completion.
	pollEvery(t, 30*time.Second, 250*time.Millisecond, "Transmission's files to match the seed's", func() bool {
		return sameFilesErr(filepath.Join(src, name), filepath.Join(dl, name)) == nil
	})
	conns := connections(seed.Stderr.String(), tr.ip)
	t.Logf("node seed announced in %v", announced.Round(time.Millisecond))
	t.Logf("node seed, Transmission (uTP %v, encryption %d) fetches: metadata after %v, complete after %v; Transmission's flags for node: %v; node's connections with Transmission: %v",
		v.utp, v.encryption, metadataAfter.Round(time.Millisecond), completeAfter.Round(time.Millisecond), keys(flags), conns)
	// What carried the data, as Transmission saw it: T is uTP, E is
	// encrypted.
	seen := map[string]string{}
	for f := range flags {
		if !strings.ContainsAny(f, "D") {
			continue
		}
		tp, enc := "tcp", "plaintext"
		if strings.Contains(f, "T") {
			tp = "utp"
		}
		if strings.Contains(f, "E") {
			enc = "rc4"
		}
		seen[f] = tp + "/" + enc
	}
	if len(seen) == 0 {
		// The download may have been over between two polls.
		for _, c := range conns {
			seen[c] = strings.Fields(c)[0]
		}
	}
	checkTransports(t, v, seen)
}

// checkTransports: with Transmission's uTP off, data came over TCP; with
// it on, over uTP (both prefer it); with encryption required, encrypted.
func checkTransports(t *testing.T, v trVariant, peers map[string]string) {
	t.Helper()
	if len(peers) == 0 {
		t.Fatalf("no connection with Transmission seen")
	}
	for who, te := range peers {
		tp, enc, _ := strings.Cut(te, "/")
		if !v.utp && tp != "tcp" {
			t.Errorf("%s: transport %s with Transmission's uTP off", who, tp)
		}
		if v.utp && tp != "utp" {
			t.Errorf("%s: transport %s; both sides prefer uTP", who, tp)
		}
		if v.encryption == 2 && enc != "rc4" {
			t.Errorf("%s: encryption %q with Transmission requiring RC4", who, enc)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
