//go:build interop

package peer

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"node/metadata"
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
const lt6Script = `
import os, sys, time
import libtorrent as lt

def log(*a):
    print("lt %.3f" % time.time(), *a, file=sys.stderr, flush=True)

def say(*a):
    print(*a, flush=True)

mode = sys.argv[1]
deadline = time.time() + float(sys.argv[-1])
cats = lt.alert_category
settings = {
    "listen_interfaces": "[::1]:0",
    "outgoing_interfaces": "::1",
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_ip_notifier": False,
    "enable_dht": False,
    "dht_bootstrap_nodes": "",
    "max_retry_port_bind": 0,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
    "alert_mask": int(cats.error | cats.status | cats.peer | cats.connect | cats.storage),
    "user_agent": "libtorrent-interop/" + lt.__version__,
}
ses = lt.session(settings)

resumed = False

def drain():
    global resumed
    for a in ses.pop_alerts():
        log(type(a).__name__, a.message())
        resumed = resumed or type(a).__name__ == "torrent_resumed_alert"

while ses.listen_port() == 0 and time.time() < deadline:
    ses.wait_for_alert(100)
    drain()

if mode == "seed":
    d, name = sys.argv[2], sys.argv[3]
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(d, name))
    ct = lt.create_torrent(fs)
    lt.set_piece_hashes(ct, d)
    raw = lt.bencode(ct.generate())
    with open(os.path.join(d, name + ".torrent"), "wb") as f:
        f.write(raw)
    ti = lt.torrent_info(raw)
    say("infohash", str(ti.info_hashes().v1))
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = d
    h = ses.add_torrent(atp)
else:
    d, magnet, peer = sys.argv[2], sys.argv[3], sys.argv[4]
    atp = lt.parse_magnet_uri(magnet)
    atp.save_path = d
    h = ses.add_torrent(atp)
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
last = 0
while time.time() < deadline:
    ses.wait_for_alert(250)
    drain()
    s = h.status()
    if time.time() - last > 2:
        last = time.time()
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
	var ih metadata.InfoHash
	hexIH := lt.expect(t, "infohash", 30*time.Second)
	if b, err := hex.DecodeString(hexIH); err != nil || len(b) != len(ih) {
		t.Fatalf("bad info-hash %q from libtorrent", hexIH)
	} else {
		copy(ih[:], b)
	}
	port, err := strconv.Atoi(lt.expect(t, "port", 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	lt.expect(t, "ready", 30*time.Second)
	seedAddr := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port))
	tor, _ := runTorrent(t, Config{InfoHash: ih, Dir: dst, Listener: ln, Peers: []netip.AddrPort{seedAddr}, Logger: debugLogger(t)})
	waitDone(t, tor, 40*time.Second)
	sameTree(t, src, dst, "content")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := tor.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
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
			magnet := fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=content", ih[:])
			peer := addrOf(ln.Addr()).String()
			if weDial {
				peer = "-"
			}
			lt := startLT6(t, "fetch", dst, magnet, peer, "60")
			port, err := strconv.Atoi(lt.expect(t, "port", 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true, Logger: debugLogger(t)}
			if weDial {
				cfg.DHT = &fakeDHT{
					addr:  netip.MustParseAddrPort("[::1]:1"),
					from:  netip.MustParseAddrPort("[::1]:2"),
					peers: []netip.AddrPort{netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port))},
				}
			}
			seeder, _ := runTorrent(t, cfg)
			lt.expect(t, "done", 60*time.Second)
			select {
			case <-lt.exited:
				if lt.err != nil {
					t.Fatalf("libtorrent: %v", lt.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("libtorrent did not exit after done")
			}
			sameTree(t, src, dst, "content")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := seeder.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Uploaded < mi.Info.Length {
				t.Fatalf("seeder stats %+v: want Uploaded ≥ %d", s, mi.Info.Length)
			}
			t.Logf("our seeder: %+v", s)
		})
	}
}
