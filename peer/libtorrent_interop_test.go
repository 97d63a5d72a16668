//go:build interop

package peer

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"node/dht"
	"node/internal/testutil"
	"node/internal/testutil/dhtnet"
	"node/metadata"
)

// Interop with libtorrent (rasterbar, through Debian's python3-libtorrent),
// run with `make interop` or
//
//	go test -tags interop -race -count=1 -run Libtorrent -v ./peer/
//
// The libtorrent side is a Python child process (ltScript, written to a
// temporary directory). Everything stays on loopback: libtorrent's session
// gets every setting at construction, with LSD, UPnP, NAT-PMP and the IP
// notifier off, its DHT bootstrapped only from our nodes (never
// dht.libtorrent.org), and its listen and outgoing interfaces on one
// 127.x address. Subnets 127.0.86-89.x belong to these tests.

const ltPython = "/usr/bin/python3" // Debian's, which has python3-libtorrent

// ltScript is the libtorrent side.
//
//	ltpeer.py seed  IP NODES DIR NAME TIMEOUT  creates a hybrid v1+v2 torrent (libtorrent's
//	    defaults: BEP 47 padding) of DIR/NAME, writes it to DIR/NAME.torrent, prints
//	    "infohash <v1 hex>", "port <listen port>", then "ready" once seeding.
//	ltpeer.py fetch IP NODES DIR MAGNET TIMEOUT  downloads the magnet link into DIR,
//	    prints "done" when seeding and exits 0 (1 on timeout).
//	ltpeer.py linger IP NODES DIR MAGNET TIMEOUT  is fetch, but prints "done" once
//	    and stays in the swarm until killed or TIMEOUT.
//
// NODES is "ip:port,ip:port,...": our DHT nodes, added with add_dht_node.
// Alerts go to stderr.
const ltScript = ltPrelude + `
mode, ip, nodes, d, arg, timeout = sys.argv[1:7]
deadline = time.time() + float(timeout)

mask = (cats.error | cats.status | cats.peer | cats.connect | cats.storage |
        cats.dht | cats.port_mapping | cats.tracker | cats.ip_block)
ses = lt.session(loopback_settings(ip + ":0", ip,
    enable_dht=True,
    dht_restrict_routing_ips=False,
    dht_restrict_search_ips=False,
    dht_block_ratelimit=10000,
    alert_mask=int(mask)))
for n in nodes.split(","):
    h, p = n.rsplit(":", 1)
    ses.add_dht_node((h, int(p)))

wait_listening(deadline)

if mode == "seed":
    ti = create_torrent(d, arg)
    pads = sum(1 for i in range(ti.files().num_files()) if ti.files().file_flags(i) & lt.file_storage.flag_pad_file)
    log("created", ti.name(), "files", ti.files().num_files(), "pads", pads,
        "piece_length", ti.piece_length(), "pieces", ti.num_pieces(),
        "v1", str(ti.info_hashes().v1), "v2", str(ti.info_hashes().v2))
    say("infohash", str(ti.info_hashes().v1))
    h = add_torrent(ti, d)
else:
    h = add_magnet(arg, d)
say("port", ses.listen_port())

announced = False
said_done = False
for s, due in statuses(h, deadline, 2):
    if due:
        log("status", s.state, "progress %.3f" % s.progress, "peers", s.num_peers,
            "has_metadata", s.has_metadata,
            "connected", ",".join("%s:%d" % p.ip for p in h.get_peer_info()))
        ses.post_dht_stats()  # logged as a dht_stats_alert
    if mode == "seed":
        if s.is_seeding and not announced:
            h.force_dht_announce()
            announced = True
            say("ready")
    elif s.is_seeding or (s.has_metadata and s.progress >= 1):
        if mode == "linger":
            if not said_done:
                said_done = True
                say("done")
            continue
        drain()
        say("done")
        sys.exit(0)
log("timeout")
sys.exit(1)
`

// ltChild is a running libtorrent child process: its stdout is read a
// line at a time.
type ltChild struct{ *testutil.Proc }

// needLibtorrent skips the test unless Debian's python3 imports libtorrent.
func needLibtorrent(t testing.TB) {
	t.Helper()
	if out, err := exec.Command(ltPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import libtorrent (apt-get install python3-libtorrent): %v %s", ltPython, err, out)
	}
}

// startLibtorrent runs ltScript in mode with the given arguments. The child
// is killed (by PID) and reaped when the test ends; its stderr is printed
// if the test failed.
func startLibtorrent(t *testing.T, mode, ip string, nodes []*dht.Node, dir, arg string, timeout time.Duration) *ltChild {
	t.Helper()
	var ns []string
	for _, n := range nodes {
		ns = append(ns, n.Addr().String())
	}
	return startLTScript(t, ltScript, mode+" on "+ip, mode, ip, strings.Join(ns, ","), dir, arg, strconv.Itoa(int(timeout/time.Second)))
}

// startLTScript runs a Python script under ltPython with args, its stdout
// read line by line into the child's Lines; killed (by PID, with its
// process group: what the interpreter starts goes too) and reaped when the
// test ends, its stderr printed if the test failed. what names it in the
// log.
func startLTScript(t testing.TB, script, what string, args ...string) *ltChild {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ltpeer.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ltPython, append([]string{path}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return &ltChild{testutil.StartProc(t, "libtorrent "+what, cmd, testutil.ProcOptions{Lines: true})}
}

// expect reads the child's stdout until a line starting with prefix, and
// returns the rest of that line.
func (c *ltChild) expect(t testing.TB, prefix string, d time.Duration) string {
	t.Helper()
	l := c.Await(t, d, fmt.Sprintf("%q", prefix), func(l string) bool {
		t.Logf("libtorrent: %s", l)
		return strings.HasPrefix(l, prefix)
	})
	return strings.TrimSpace(strings.TrimPrefix(l, prefix))
}

// debugLogger is a zap development logger into a buffer, printed if the
// test failed.
func debugLogger(t *testing.T) *zap.Logger {
	buf := new(testutil.Buffer)
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(buf), zap.DebugLevel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("our log:\n%s", buf.String())
		}
	})
	return zap.New(core, zap.Development())
}

// libtorrent creates its own hybrid v1+v2 torrent (BEP 47 padding files
// between the files) of our content and seeds it, announcing through our
// DHT; our leecher starts from the bare v1 info-hash, finds it through the
// DHT alone, fetches the info dictionary with BEP 9 and every piece, and
// writes no padding file.
func TestLibtorrentSeedsWeFetch(t *testing.T) {
	needLibtorrent(t)
	nodes := dhtnet.Start(t, 86, 8)
	src, dst := t.TempDir(), t.TempDir()
	makeContent(t, src, "content", testFiles, 0)

	const seedIP = "127.0.87.1"
	lt := startLibtorrent(t, "seed", seedIP, nodes, src, "content", 85*time.Second)
	ih, port := lt.seeding(t)
	// Its torrent must be the case we mean to test: hybrid, with padding.
	raw, err := os.ReadFile(filepath.Join(src, "content.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metadata.ParseMetaInfo(raw)
	if err != nil {
		t.Fatalf("parsing libtorrent's torrent: %v", err)
	}
	if mi.Info.InfoHash != ih {
		t.Fatalf("libtorrent's torrent hashes to %v, it printed %v", mi.Info.InfoHash, ih)
	}
	if !bytes.Contains(raw, []byte("4:attr1:p")) || !bytes.Contains(raw, []byte("9:file tree")) {
		t.Fatalf("libtorrent's torrent is not hybrid with padding files")
	}
	t.Logf("libtorrent seeds %v (%d bytes of torrent) on %s:%d", ih, len(raw), seedIP, port)

	seedAddr := netip.AddrPortFrom(netip.MustParseAddr(seedIP), port)
	waitAnnounced(t, nodes[6], ih, seedAddr, 30*time.Second)

	leech := newEndpoint(t, "127.0.87.2", nodes[3])
	tor := fetchAll(t, Config{InfoHash: ih, Dir: dst, Listener: leech.ln, DHT: leech.node,
		Dial: boundDial("127.0.87.2"), Logger: debugLogger(t)}, src, dst)
	if _, err := os.Stat(filepath.Join(dst, "content", ".pad")); !os.IsNotExist(err) {
		t.Fatalf("padding directory written: %v", err)
	}
	s := statsSoon(t, tor)
	if s.HashFails != 0 {
		t.Fatalf("stats %+v: hash failures", s)
	}
	// libtorrent speaks the Fast extension (BEP 6): it says have all and,
	// once we are interested, sends its allowed fast set.
	if s.FastReceived.HaveAll == 0 || s.FastReceived.AllowedFast == 0 || s.FastSent.HaveNone == 0 {
		t.Fatalf("stats %+v: want have all and allowed fast from libtorrent, have none to it", s)
	}
	t.Logf("our leecher: %+v", s)
}

// Our seeder announces to our DHT; libtorrent, given only a magnet link
// and our DHT nodes, finds it, fetches the info dictionary (our BEP 9
// serving) and every block (our block serving).
func TestWeSeedLibtorrentFetches(t *testing.T) {
	needLibtorrent(t)
	nodes := dhtnet.Start(t, 88, 8)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 0)
	ih := mi.Info.InfoHash

	const seedIP = "127.0.88.101" // .1-.8 are the DHT nodes
	seed := newEndpoint(t, seedIP, nodes[0])
	seedAddr := addrOf(seed.ln.Addr())
	seeder, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: seed.ln, DHT: seed.node,
		Dial: boundDial(seedIP), Logger: debugLogger(t)})
	waitAnnounced(t, nodes[5], ih, seedAddr, 20*time.Second)

	lt := startLibtorrent(t, "fetch", "127.0.89.1", nodes, dst, magnetFor(ih), 60*time.Second)
	lt.expect(t, "done", 65*time.Second)
	lt.ExitsOK(t, ltExitWait)
	sameTree(t, src, dst, "content")

	s := statsSoon(t, seeder)
	uploadedAll(t, s, mi)
	if s.FastSent.HaveAll == 0 {
		t.Fatalf("seeder stats %+v: want have all sent to libtorrent (BEP 6)", s)
	}
	t.Logf("our seeder: %+v", s)
}
