//go:build interop

package peer

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Encryption interop with libtorrent, run with
//
//	go test -tags interop -count=1 -run LibtorrentMSE -v ./peer/
//
// libtorrent (python3-libtorrent) is set to require MSE both ways
// (out_enc_policy and in_enc_policy forced) with RC4 the only level
// allowed; no DHT, LSD, UPnP, NAT-PMP or uTP, on its own 127.0.129.x
// address. Subnet 127.0.129.x belongs to these tests.

// ltMSEScript is the libtorrent side.
//
//	ltmse.py seed  IP DIR TORRENT -       TIMEOUT  seeds TORRENT from DIR: prints "port <port>", then "ready".
//	ltmse.py fetch IP DIR TORRENT IP:PORT TIMEOUT  fetches TORRENT into DIR from IP:PORT, prints "done"
//	    when complete and exits 0 (1 on timeout).
//
// Both print "rc4 <ip:port>" the first time they see a peer connected
// with an RC4 stream, "plain <ip:port>" for one without.
const ltMSEScript = `
import sys, time
import libtorrent as lt

def log(*a):
    print("lt %.3f" % time.time(), *a, file=sys.stderr, flush=True)

def say(*a):
    print(*a, flush=True)

mode, ip, d, tfile, peer, timeout = sys.argv[1:7]
deadline = time.time() + float(timeout)
cats = lt.alert_category
settings = {
    "listen_interfaces": ip + ":0",
    "outgoing_interfaces": ip,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_ip_notifier": False,
    "enable_dht": False,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
    "out_enc_policy": int(lt.enc_policy.forced),
    "in_enc_policy": int(lt.enc_policy.forced),
    "allowed_enc_level": int(lt.enc_level.rc4),
    "alert_mask": int(cats.error | cats.status | cats.peer | cats.connect),
    "user_agent": "libtorrent-interop/" + lt.__version__,
}
ses = lt.session(settings)
st = ses.get_settings()
log("enc", st["out_enc_policy"], st["in_enc_policy"], st["allowed_enc_level"])

def drain():
    for a in ses.pop_alerts():
        log(type(a).__name__, a.message())

while ses.listen_port() == 0 and time.time() < deadline:
    ses.wait_for_alert(100)
    drain()

atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(tfile)
atp.save_path = d
h = ses.add_torrent(atp)
say("port", ses.listen_port())
if peer != "-":
    pip, pport = peer.rsplit(":", 1)
    h.connect_peer((pip, int(pport)))

seen = set()
ready = False
while time.time() < deadline:
    ses.wait_for_alert(250)
    drain()
    for p in h.get_peer_info():
        a = "%s:%d" % p.ip
        if a not in seen and p.flags & lt.peer_info.connecting == 0 and p.flags & lt.peer_info.handshake == 0:
            seen.add(a)
            say("rc4" if p.flags & lt.peer_info.rc4_encrypted else "plain", a)
    s = h.status()
    if mode == "seed":
        if s.is_seeding and not ready:
            ready = True
            say("ready")
    elif s.is_seeding:
        drain()
        say("done")
        sys.exit(0)
log("timeout")
sys.exit(1)
`

// writeTorrentFile writes a .torrent under dir and returns its path.
func writeTorrentFile(t *testing.T, dir string, raw []byte) string {
	t.Helper()
	p := filepath.Join(dir, "content.torrent")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// libtorrent, requiring RC4, seeds; our leecher in the default mode
// (prefer) dials it with MSE and fetches every byte, none of it in clear
// on the wire.
func TestLibtorrentMSESeedsWeFetch(t *testing.T) {
	needLibtorrent(t)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	raw, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sample := contentSample(t, src)
	const seedIP = "127.0.129.1"
	lt := startLTScript(t, ltMSEScript, "seed on "+seedIP, "seed", seedIP, src, writeTorrentFile(t, t.TempDir(), raw), "-", "60")
	port, err := strconv.Atoi(lt.expect(t, "port", 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	lt.expect(t, "ready", 30*time.Second)

	const ip = "127.0.129.2"
	var tp tap
	tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: listen4(t, ip),
		Peers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(seedIP), uint16(port))},
		Dial:  tp.dial(ip), Logger: debugLogger(t),
		// Slow enough that libtorrent sees the connection before done.
		MaxDownloadRate: 1 << 20})
	waitDone(t, tor, 40*time.Second)
	sameTree(t, src, dst, "content")
	if got := lt.expect(t, "rc4", 10*time.Second); got == "" {
		t.Fatal("libtorrent named no RC4 peer")
	}
	ss := tp.streams()
	if len(ss) == 0 {
		t.Fatal("no connection tapped")
	}
	for i, s := range ss {
		if s.plain() || s.carries(sample) {
			t.Fatalf("connection %d: plaintext handshake %v, content in clear %v", i, s.plain(), s.carries(sample))
		}
	}
}

// Our seeder in the default mode; libtorrent, requiring RC4, is given its
// address and fetches every byte; we select RC4 and nothing goes in
// clear.
func TestLibtorrentMSEFetchesWeSeed(t *testing.T) {
	needLibtorrent(t)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	raw, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sample := contentSample(t, src)
	var tp tap
	ln := tp.listen(t, "127.0.129.11")
	seeder, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
		NoDownload: true, Dial: refuseDial, Logger: debugLogger(t),
		// Slow enough that libtorrent sees the connection before done.
		MaxUploadRate: 1 << 20})
	<-seeder.Done() // verified: it serves at once

	lt := startLTScript(t, ltMSEScript, "fetch on 127.0.129.12", "fetch", "127.0.129.12", dst,
		writeTorrentFile(t, t.TempDir(), raw), addrOf(ln.Addr()).String(), "60")
	lt.expect(t, "rc4", 30*time.Second)
	lt.expect(t, "done", 60*time.Second)
	sameTree(t, src, dst, "content")
	ss := tp.streams()
	if len(ss) == 0 {
		t.Fatal("no connection tapped")
	}
	for i, s := range ss {
		if s.plain() || s.carries(sample) {
			t.Fatalf("connection %d: plaintext handshake %v, content in clear %v", i, s.plain(), s.carries(sample))
		}
	}
}
