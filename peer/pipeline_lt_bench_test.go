//go:build interop

package peer

import (
	"bufio"
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

	"node/metadata"
)

// ltSeedScript seeds an existing .torrent with libtorrent: ltseed.py IP
// TORRENT SAVEPATH TIMEOUT prints "port N" once listening and "ready"
// once it has checked the data (checked up front, so that no fetch pays
// for it). Nothing but the listen socket: no DHT, LSD, UPnP, NAT-PMP, IP
// notifier or uTP.
const ltSeedScript = `
import sys, time
import libtorrent as lt
ip, tfile, d, timeout = sys.argv[1:5]
deadline = time.time() + float(timeout)
ses = lt.session({
    "listen_interfaces": ip + ":0",
    "outgoing_interfaces": ip,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_ip_notifier": False,
    "enable_dht": False,
    "dht_bootstrap_nodes": "",
    "max_retry_port_bind": 0,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
    "user_agent": "libtorrent-pipebench/" + lt.__version__,
})
while ses.listen_port() == 0 and time.time() < deadline:
    ses.wait_for_alert(100)
    ses.pop_alerts()
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(tfile)
atp.save_path = d
h = ses.add_torrent(atp)
print("port", ses.listen_port(), flush=True)
ready = False
while time.time() < deadline:
    ses.wait_for_alert(500)
    ses.pop_alerts()
    if not ready and h.status().is_seeding:
        ready = True
        print("ready", flush=True)
`

func init() {
	startLibtorrentSeeders = func(b *testing.B, src string, mi *metadata.MetaInfo, n int) []netip.AddrPort {
		if out, err := exec.Command(ltPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
			b.Skipf("%s cannot import libtorrent (apt-get install python3-libtorrent): %v %s", ltPython, err, out)
		}
		dir := b.TempDir()
		script := filepath.Join(dir, "ltseed.py")
		if err := os.WriteFile(script, []byte(ltSeedScript), 0o644); err != nil {
			b.Fatal(err)
		}
		raw, err := mi.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		tfile := filepath.Join(dir, "content.torrent")
		if err := os.WriteFile(tfile, raw, 0o644); err != nil {
			b.Fatal(err)
		}
		var addrs []netip.AddrPort
		var readies []chan struct{}
		for i := range n {
			ip := fmt.Sprintf("127.0.213.%d", 51+i)
			cmd := exec.Command(ltPython, script, ip, tfile, src, "3600")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				_ = cmd.Wait()
			})
			port := make(chan int, 1)
			ready := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if rest, ok := strings.CutPrefix(sc.Text(), "port "); ok {
						p, _ := strconv.Atoi(rest)
						port <- p
					}
					if sc.Text() == "ready" {
						close(ready)
					}
				}
			}()
			select {
			case p := <-port:
				addrs = append(addrs, netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(p)))
			case <-time.After(30 * time.Second):
				b.Fatalf("libtorrent seeder on %s: no port after 30 s", ip)
			}
			readies = append(readies, ready)
		}
		for i, r := range readies {
			select {
			case <-r:
			case <-time.After(5 * time.Minute):
				b.Fatalf("libtorrent seeder %d: data not checked after 5 minutes", i)
			}
		}
		return addrs
	}
}
