//go:build interop

package peer

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"node/metadata"
)

// ltSeedScript seeds an existing .torrent with libtorrent: ltseed.py IP
// TORRENT SAVEPATH TIMEOUT prints "port N" once listening and "ready"
// once it has checked the data (checked up front, so that no fetch pays
// for it). Nothing but the listen socket: no DHT, LSD, UPnP, NAT-PMP, IP
// notifier or uTP.
const ltSeedScript = ltPrelude + `
ip, tfile, d, timeout = sys.argv[1:5]
deadline = time.time() + float(timeout)
ses = lt.session(loopback_settings(ip + ":0", ip,
    user_agent="libtorrent-pipebench/" + lt.__version__))
wait_listening(deadline)
h = add_torrent(lt.torrent_info(tfile), d)
say("port", ses.listen_port())
ready = False
while time.time() < deadline:
    ses.wait_for_alert(500)
    drain()
    if not ready and h.status().is_seeding:
        ready = True
        say("ready")
`

func init() {
	startLibtorrentSeeders = func(b *testing.B, src string, mi *metadata.MetaInfo, n int) []netip.AddrPort {
		needLibtorrent(b)
		tfile := torrentFileOf(b, mi)
		var addrs []netip.AddrPort
		var seeders []*ltChild
		for i := range n {
			ip := fmt.Sprintf("127.0.213.%d", 51+i)
			lt := startLTScript(b, ltSeedScript, "seeder on "+ip, ip, tfile, src, "3600")
			addrs = append(addrs, netip.AddrPortFrom(netip.MustParseAddr(ip), lt.port(b, 30*time.Second)))
			seeders = append(seeders, lt)
		}
		// Checked up front, so that no fetch pays for it.
		for _, lt := range seeders {
			lt.expect(b, "ready", 5*time.Minute)
		}
		return addrs
	}
}
