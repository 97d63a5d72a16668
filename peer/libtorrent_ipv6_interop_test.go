//go:build interop

package peer

import (
	"net/netip"
	"testing"
	"time"
)

// IPv6 interop with libtorrent, run with
//
//	go test -tags interop -count=1 -run LibtorrentIPv6 -v ./peer/
//
// libtorrent listens and dials on [::1] alone, with its DHT, LSD, UPnP,
// NAT-PMP and IP notifier off: peers are given to it, or it is dialled.

// lt6Script is the libtorrent side.
//
//	lt6peer.py seed  DIR NAME TIMEOUT         creates a torrent of DIR/NAME (libtorrent's
//	    defaults: hybrid v1+v2, BEP 47 padding), prints "infohash <v1 hex>", "port <listen
//	    port>", then "ready" once seeding.
//	lt6peer.py fetch DIR MAGNET PEER TIMEOUT  prints "port <listen port>", downloads the
//	    magnet link into DIR, from PEER ([::1]:port) if it is not "-", else from whoever
//	    connects; prints "done" when it has every piece and exits 0 (1 on timeout).
const lt6Script = ltPrelude + `
mode = sys.argv[1]
deadline = time.time() + float(sys.argv[-1])
ses = lt.session(loopback_settings("[::1]:0", "::1",
    alert_mask=BASIC_ALERTS | int(cats.storage)))

resumed = False

def drain():
    global resumed
    for a in ses.pop_alerts():
        log(type(a).__name__, a.message())
        resumed = resumed or type(a).__name__ == "torrent_resumed_alert"

wait_listening(deadline)

if mode == "seed":
    d, name = sys.argv[2], sys.argv[3]
    ti = create_torrent(d, name)
    say("infohash", str(ti.info_hashes().v1))
    h = add_torrent(ti, d)
else:
    d, magnet, peer = sys.argv[2], sys.argv[3], sys.argv[4]
    h = add_magnet(magnet, d)
    if peer != "-":
        host, port = peer.rsplit(":", 1)
        h.connect_peer((host.strip("[]"), int(port)))
    # Until the torrent has started, libtorrent hangs up on peers that
    # connect for it.
    while not resumed and time.time() < deadline:
        ses.wait_for_alert(100)
        drain()
say("port", ses.listen_port())

ready = False
for s, due in statuses(h, deadline, 2):
    if due:
        log("status", s.state, "progress %.3f" % s.progress, "peers", s.num_peers)
        for p in h.get_peer_info():
            log("peer", p.ip, p.client)
    if mode == "seed":
        if s.is_seeding and not ready:
            ready = True
            say("ready")
    elif s.is_seeding or (s.has_metadata and s.progress >= 1):
        drain()
        say("done")
        sys.exit(0)
log("timeout")
sys.exit(1)
`

// startLT6 runs lt6Script with args (see startLTScript).
func startLT6(t *testing.T, args ...string) *ltChild {
	t.Helper()
	return startLTScript(t, lt6Script, args[0]+" on ::1", args...)
}

// libtorrent seeds on [::1] alone; our leecher, listening on [::1] only
// and given its address, fetches the info dictionary and every byte.
func TestLibtorrentIPv6SeedsWeFetch(t *testing.T) {
	needLibtorrent(t)
	ln := listen6(t)
	src, dst := t.TempDir(), t.TempDir()
	makeContent(t, src, "content", testFiles, 0)
	lt := startLT6(t, "seed", src, "content", "60")
	ih, port := lt.seeding(t)
	seedAddr := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	tor := fetchAll(t, Config{InfoHash: ih, Dir: dst, Listener: ln, Peers: []netip.AddrPort{seedAddr}, Logger: debugLogger(t)}, src, dst)
	s := statsSoon(t, tor)
	if s.HashFails != 0 || s.Downloaded < s.Length {
		t.Fatalf("stats %+v", s)
	}
	t.Logf("our leecher: %+v", s)
}

// Our seeder on [::1] alone; libtorrent, on [::1] alone with a magnet
// link, fetches the info dictionary and every byte: once given our
// address ("it dials"), once given nothing, our seeder having found it
// ("we dial": a leecher that never dials meets a seed that does).
func TestWeSeedLibtorrentIPv6Fetches(t *testing.T) {
	needLibtorrent(t)
	for _, weDial := range []bool{false, true} {
		name := "it dials"
		if weDial {
			name = "we dial"
		}
		t.Run(name, func(t *testing.T) {
			ln := listen6(t)
			src, dst := t.TempDir(), t.TempDir()
			mi := makeContent(t, src, "content", testFiles, 0)
			ih := mi.Info.InfoHash
			peer := addrOf(ln.Addr()).String()
			if weDial {
				peer = "-"
			}
			lt := startLT6(t, "fetch", dst, magnetFor(ih), peer, "60")
			port := lt.port(t, 10*time.Second)
			cfg := Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true, Logger: debugLogger(t)}
			if weDial {
				cfg.DHT = &fakeDHT{
					addr:  netip.MustParseAddrPort("[::1]:1"),
					from:  netip.MustParseAddrPort("[::1]:2"),
					peers: []netip.AddrPort{netip.AddrPortFrom(netip.IPv6Loopback(), port)},
				}
			}
			seeder, _ := runTorrent(t, cfg)
			lt.expect(t, "done", 60*time.Second)
			lt.ExitsOK(t, ltExitWait)
			sameTree(t, src, dst, "content")
			s := statsSoon(t, seeder)
			uploadedAll(t, s, mi)
			t.Logf("our seeder: %+v", s)
		})
	}
}
