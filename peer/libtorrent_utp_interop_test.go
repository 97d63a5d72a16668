//go:build interop && cgo

package peer

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Interop over uTP alone with libtorrent, run with
//
//	go test -tags interop -count=1 -run LibtorrentUTP -v ./peer/
//
// libtorrent's TCP is off both ways (enable_incoming_tcp and
// enable_outgoing_tcp false) and so is ours (Dial fails), so only uTP can
// carry the data; neither side has a DHT: each is given the other's
// address. Subnet 127.0.127.x belongs to these tests.

// ltUTPScript is the libtorrent side.
//
//	ltutp.py seed  IP DIR NAME  -        TIMEOUT  makes a torrent of DIR/NAME (libtorrent's
//	    defaults: hybrid v1+v2, BEP 47 padding), writes it to DIR/NAME.torrent, prints
//	    "infohash <v1 hex>", "port <port>",
//	    then "ready" once seeding, and seeds until killed or TIMEOUT.
//	ltutp.py fetch IP DIR MAGNET PEER     TIMEOUT  downloads the magnet link into DIR from
//	    PEER (ip:port), prints "done" and exits 0 once seeding (1 on timeout).
//
// Both print "peer <ip:port> <utp|tcp>" for each connected peer every
// second.
const ltUTPScript = ltPrelude + `
mode, ip, d, arg, peer, timeout = sys.argv[1:7]
deadline = time.time() + float(timeout)
ses = lt.session(loopback_settings(ip + ":0", ip,
    enable_incoming_tcp=False,
    enable_outgoing_tcp=False,
    enable_incoming_utp=True,
    enable_outgoing_utp=True,
    alert_mask=BASIC_ALERTS))
wait_listening(deadline)

if mode == "seed":
    ti = create_torrent(d, arg)
    say("infohash", str(ti.info_hashes().v1))
    h = add_torrent(ti, d)
else:
    h = add_magnet(arg, d)
    ph, pp = peer.rsplit(":", 1)
    h.connect_peer((ph, int(pp)))
say("port", ses.listen_port())

UTP = 1 << 17  # peer_info::utp_socket
ready = False
for s, due in statuses(h, deadline, 1):
    if due:
        for p in h.get_peer_info():
            say("peer", "%s:%d" % p.ip, "utp" if int(p.flags) & UTP else "tcp")
        log("status", s.state, "progress %.3f" % s.progress, "peers", s.num_peers)
        if mode == "fetch" and s.num_peers == 0:
            h.connect_peer((ph, int(pp)))
    if mode == "seed":
        if s.is_seeding and not ready:
            ready = True
            say("ready")
    elif s.is_seeding or (s.has_metadata and s.progress >= 1):
        say("done")
        sys.exit(0)
log("timeout")
sys.exit(1)
`

// expectUTPUntil reads the child's lines until one starting with final,
// failing the test if it lists a peer over TCP.
func (c *ltChild) expectUTPUntil(t *testing.T, final string, d time.Duration) {
	t.Helper()
	utp := 0
	c.Await(t, d, fmt.Sprintf("%q", final), func(l string) bool {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "peer" {
			if f[2] != "utp" {
				t.Fatalf("libtorrent lists a peer over %s: %q", f[2], l)
			}
			utp++
			return false
		}
		t.Logf("libtorrent: %s", l)
		if !strings.HasPrefix(l, final) {
			return false
		}
		if utp == 0 && final == "done" {
			t.Logf("libtorrent finished before listing its peers")
		}
		return true
	})
}

// libtorrent seeds over uTP alone; we fetch by magnet over uTP alone.
func TestLibtorrentUTPSeedsWeFetch(t *testing.T) {
	needLibtorrent(t)
	src, dst := t.TempDir(), t.TempDir()
	makeContent(t, src, "content", testFiles, 0)
	const seedIP = "127.0.127.1"
	lt := startLTScript(t, ltUTPScript, "uTP seed on "+seedIP, "seed", seedIP, src, "content", "-", "80")
	ih, port := lt.seeding(t)
	go func() {
		for range lt.Lines {
		}
	}()

	s := utpSocket(t, "127.0.127.2")
	cfg := utpConfig(s, ih, nil, dst)
	cfg.Peers = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(seedIP), port)}
	cfg.Logger = debugLogger(t)
	tor := fetchAll(t, cfg, src, dst)
	st := statsSoon(t, tor)
	onlyUTP(t, st)
	if st.HashFails != 0 {
		t.Fatalf("stats %+v: hash failures", st)
	}
}

// We seed over uTP alone; libtorrent, uTP alone, fetches by magnet.
func TestLibtorrentUTPFetchesWeSeed(t *testing.T) {
	needLibtorrent(t)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 0)
	s := utpSocket(t, "127.0.127.3")
	cfg := utpConfig(s, mi.Info.InfoHash, mi.Info, src)
	cfg.Logger = debugLogger(t)
	seeder, _ := runTorrent(t, cfg)
	select {
	case <-seeder.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the seeder did not verify its data")
	}
	lt := startLTScript(t, ltUTPScript, "uTP fetch", "fetch", "127.0.127.4", dst, magnetFor(mi.Info.InfoHash), s.Addr().String(), "60")
	lt.expectUTPUntil(t, "done", 65*time.Second)
	lt.ExitsOK(t, ltExitWait)
	sameTree(t, src, dst, "content")
	st := statsSoon(t, seeder)
	onlyUTP(t, st)
	uploadedAll(t, st, mi)
}
