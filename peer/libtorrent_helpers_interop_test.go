//go:build interop

package peer

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"node/metadata"
)

// ltPrelude begins every libtorrent script. It defines log (to stderr,
// printed if the test failed) and say (to stdout, read by expect);
// loopback_settings, a session's settings with everything that could
// reach beyond its listen and outgoing interfaces off (LSD, UPnP,
// NAT-PMP, the IP notifier, the DHT and its bootstrap routers) and uTP
// off, which keyword arguments override; then, for the script's global
// ses: drain, wait_listening, statuses, create_torrent, add_torrent and
// add_magnet.
const ltPrelude = `
import os, sys, time
import libtorrent as lt

def log(*a):
    print("lt %.3f" % time.time(), *a, file=sys.stderr, flush=True)

def say(*a):
    print(*a, flush=True)

cats = lt.alert_category
BASIC_ALERTS = int(cats.error | cats.status | cats.peer | cats.connect)

def loopback_settings(listen, outgoing, **more):
    s = {
        "listen_interfaces": listen,
        "outgoing_interfaces": outgoing,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "enable_dht": False,
        "dht_bootstrap_nodes": "",
        "max_retry_port_bind": 0,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "user_agent": "libtorrent-interop/" + lt.__version__,
    }
    s.update(more)
    return s

def drain():
    for a in ses.pop_alerts():
        log(type(a).__name__, a.message())

# Wait for the listen socket (and so the port we announce).
def wait_listening(deadline):
    while ses.listen_port() == 0 and time.time() < deadline:
        ses.wait_for_alert(100)
        drain()

# Every quarter second until deadline, the alerts drained: h's status,
# and whether every seconds have passed since the last time that was
# true (and so true the first time).
def statuses(h, deadline, every):
    last = 0
    while time.time() < deadline:
        ses.wait_for_alert(250)
        drain()
        due = time.time() - last > every
        if due:
            last = time.time()
        yield h.status(), due

# A torrent of d/name with libtorrent's defaults (hybrid v1+v2, BEP 47
# pad files), written to d/name.torrent.
def create_torrent(d, name):
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(d, name))
    ct = lt.create_torrent(fs)
    lt.set_piece_hashes(ct, d)
    raw = lt.bencode(ct.generate())
    with open(os.path.join(d, name + ".torrent"), "wb") as f:
        f.write(raw)
    return lt.torrent_info(raw)

def add_torrent(ti, d):
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = d
    return ses.add_torrent(atp)

def add_magnet(uri, d):
    atp = lt.parse_magnet_uri(uri)
    atp.save_path = d
    return ses.add_torrent(atp)
`

// seeding reads what a script that made its own torrent says as it
// starts to seed: the torrent's v1 info-hash, its listen port, then
// "ready".
func (c *ltChild) seeding(t *testing.T) (metadata.InfoHash, uint16) {
	t.Helper()
	var ih metadata.InfoHash
	hexIH := c.expect(t, "infohash", 30*time.Second)
	if b, err := hex.DecodeString(hexIH); err != nil || len(b) != len(ih) {
		t.Fatalf("bad info-hash %q from libtorrent", hexIH)
	} else {
		copy(ih[:], b)
	}
	port := c.port(t, 10*time.Second)
	c.expect(t, "ready", 30*time.Second)
	return ih, port
}

// port reads the listen port the script says.
func (c *ltChild) port(t testing.TB, d time.Duration) uint16 {
	t.Helper()
	port, err := strconv.ParseUint(c.expect(t, "port", d), 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(port)
}

// ltExitWait bounds how long a script that has said "done" takes to exit.
const ltExitWait = 10 * time.Second

// magnetFor is the magnet link of the tests' content with info-hash ih.
func magnetFor(ih metadata.InfoHash) string {
	return fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=content", ih[:])
}

// fetchAll runs our torrent with cfg, which fetches into dst, and checks
// it has src's content once complete.
func fetchAll(t *testing.T, cfg Config, src, dst string) *Torrent {
	t.Helper()
	tor, _ := runTorrent(t, cfg)
	waitDone(t, tor, 40*time.Second)
	sameTree(t, src, dst, "content")
	return tor
}

// statsSoon is tor's stats, which it must give within 5 s.
func statsSoon(t *testing.T, tor *Torrent) Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := tor.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// uploadedAll fails the test unless our seeder's stats s count all of
// mi's content uploaded.
func uploadedAll(t *testing.T, s Stats, mi *metadata.MetaInfo) {
	t.Helper()
	if s.Uploaded < mi.Info.Length {
		t.Fatalf("seeder stats %+v: want Uploaded ≥ %d", s, mi.Info.Length)
	}
}

// torrentFileOf writes mi to content.torrent under a temporary directory,
// for libtorrent, and returns its path.
func torrentFileOf(t testing.TB, mi *metadata.MetaInfo) string {
	t.Helper()
	raw, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "content.torrent")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
