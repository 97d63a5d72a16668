//go:build interop

package peer

import (
	"net/netip"
	"testing"
	"time"

	"node/metadata"
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
const ltMSEScript = ltPrelude + `
mode, ip, d, tfile, peer, timeout = sys.argv[1:7]
deadline = time.time() + float(timeout)
ses = lt.session(loopback_settings(ip + ":0", ip,
    out_enc_policy=int(lt.enc_policy.forced),
    in_enc_policy=int(lt.enc_policy.forced),
    allowed_enc_level=int(lt.enc_level.rc4),
    alert_mask=BASIC_ALERTS))
st = ses.get_settings()
log("enc", st["out_enc_policy"], st["in_enc_policy"], st["allowed_enc_level"])
wait_listening(deadline)

h = add_torrent(lt.torrent_info(tfile), d)
say("port", ses.listen_port())
if peer != "-":
    pip, pport = peer.rsplit(":", 1)
    h.connect_peer((pip, int(pport)))

seen = set()
ready = False
for s, _ in statuses(h, deadline, 0):
    for p in h.get_peer_info():
        a = "%s:%d" % p.ip
        if a not in seen and p.flags & lt.peer_info.connecting == 0 and p.flags & lt.peer_info.handshake == 0:
            seen.add(a)
            say("rc4" if p.flags & lt.peer_info.rc4_encrypted else "plain", a)
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

// mseContent makes the content under src, in 64 KiB pieces, and writes
// its torrent for libtorrent: its metainfo, the torrent file's path, and
// a sample of the content to look for on the wire.
func mseContent(t *testing.T, src string) (*metadata.MetaInfo, string, []byte) {
	t.Helper()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	return mi, torrentFileOf(t, mi), contentSample(t, src)
}

// libtorrent, requiring RC4, seeds; our leecher in the default mode
// (prefer) dials it with MSE and fetches every byte, none of it in clear
// on the wire.
func TestLibtorrentMSESeedsWeFetch(t *testing.T) {
	needLibtorrent(t)
	src, dst := t.TempDir(), t.TempDir()
	mi, tfile, sample := mseContent(t, src)
	const seedIP = "127.0.129.1"
	lt := startLTScript(t, ltMSEScript, "seed on "+seedIP, "seed", seedIP, src, tfile, "-", "60")
	port := lt.port(t, 20*time.Second)
	lt.expect(t, "ready", 30*time.Second)

	const ip = "127.0.129.2"
	var tp tap
	fetchAll(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: listen4(t, ip),
		Peers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(seedIP), port)},
		Dial:  tp.dial(ip), Logger: debugLogger(t),
		// Slow enough that libtorrent sees the connection before done.
		MaxDownloadRate: 1 << 20}, src, dst)
	if got := lt.expect(t, "rc4", 10*time.Second); got == "" {
		t.Fatal("libtorrent named no RC4 peer")
	}
	tp.noneInClear(t, sample)
}

// Our seeder in the default mode; libtorrent, requiring RC4, is given its
// address and fetches every byte; we select RC4 and nothing goes in
// clear.
func TestLibtorrentMSEFetchesWeSeed(t *testing.T) {
	needLibtorrent(t)
	src, dst := t.TempDir(), t.TempDir()
	mi, tfile, sample := mseContent(t, src)
	var tp tap
	ln := tp.listen(t, "127.0.129.11")
	seeder, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln,
		NoDownload: true, Dial: refuseDial, Logger: debugLogger(t),
		// Slow enough that libtorrent sees the connection before done.
		MaxUploadRate: 1 << 20})
	<-seeder.Done() // verified: it serves at once

	lt := startLTScript(t, ltMSEScript, "fetch on 127.0.129.12", "fetch", "127.0.129.12", dst,
		tfile, addrOf(ln.Addr()).String(), "60")
	lt.expect(t, "rc4", 30*time.Second)
	lt.expect(t, "done", 60*time.Second)
	sameTree(t, src, dst, "content")
	tp.noneInClear(t, sample)
}
