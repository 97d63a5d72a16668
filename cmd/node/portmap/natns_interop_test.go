//go:build interop

package portmap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"node/internal/testutil"
)

// The NAT test: three network namespaces made by the test, linked only by
// veth pairs between them, none with a link to the host's network:
//
//	home (10.200.1.2)  --veth--  router (10.200.1.1 | 10.200.2.1)  --veth--  internet (10.200.2.2)
//
// The router masquerades home's traffic to the internet side (nftables)
// and runs Debian's miniupnpd (UPnP IGD and NAT-PMP) for home. node seed
// runs in home, a DHT node and node fetch in internet. With port mapping
// the seed maps 6881 on the router, announces to the DHT, and the fetch
// finds it there and downloads through the mapping; without, the fetch
// finds the same address and cannot connect. A last case has libtorrent
// (python3-libtorrent) download from the mapped address instead.
//
// miniupnpd refuses to map anything while its external interface has a
// private address, unless STUN tells it the NAT in front of it is
// 1:1: the test runs a minimal STUN responder in internet (this test
// binary, TestNATHelperSTUN), so every address stays in 10.200.0.0/16.

const (
	homeIP     = "10.200.1.2"
	routerLAN  = "10.200.1.1"
	routerWAN  = "10.200.2.1"
	internetIP = "10.200.2.2"
	stunAddr   = internetIP + ":3478"
	peerPort   = 6881
)

// natNet is one run's namespaces and the veth names in them.
type natNet struct {
	home, router, inet string
	hv, rl, rw, iv     string // home's veth, router's LAN and WAN veths, internet's veth
}

func natNeeds(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the NAT test makes network namespaces: it needs root")
	}
	for _, p := range []string{"ip", "nft", "miniupnpd"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("the NAT test needs %s (Debian: iproute2, nftables, miniupnpd-nftables): %v", p, err)
		}
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	return string(out)
}

// newNATNet makes the namespaces and links, removed at the end of the
// test whatever happens.
func newNATNet(t *testing.T) *natNet {
	var b [2]byte
	_, _ = rand.Read(b[:])
	s := fmt.Sprintf("%04x", binary.BigEndian.Uint16(b[:]))
	n := &natNet{home: "nodenat-home-" + s, router: "nodenat-router-" + s, inet: "nodenat-inet-" + s,
		hv: "nnh" + s, rl: "nnrl" + s, rw: "nnrw" + s, iv: "nni" + s}
	for _, ns := range []string{n.home, n.router, n.inet} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", n.hv, "netns", n.home, "type", "veth", "peer", "name", n.rl, "netns", n.router)
	run(t, "ip", "link", "add", n.rw, "netns", n.router, "type", "veth", "peer", "name", n.iv, "netns", n.inet)
	for _, a := range []struct{ ns, dev, addr string }{
		{n.home, n.hv, homeIP + "/24"}, {n.router, n.rl, routerLAN + "/24"},
		{n.router, n.rw, routerWAN + "/24"}, {n.inet, n.iv, internetIP + "/24"},
	} {
		run(t, "ip", "-n", a.ns, "addr", "add", a.addr, "dev", a.dev)
		run(t, "ip", "-n", a.ns, "link", "set", a.dev, "up")
	}
	// home's default route is the router, in our own namespace: node
	// finds its NAT-PMP gateway there, and sends SSDP that way. The
	// router has no default route, so nothing goes further.
	run(t, "ip", "-n", n.home, "route", "add", "default", "via", routerLAN, "dev", n.hv)
	run(t, "ip", "netns", "exec", n.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return n
}

// check proves that nothing in the namespaces can reach beyond them:
// each has lo and its own veths only, each veth's peer in one of our
// namespaces, and the only default route is home's, via the router.
func (n *natNet) check(t *testing.T) {
	t.Helper()
	own := map[string][]string{n.home: {n.hv}, n.router: {n.rl, n.rw}, n.inet: {n.iv}}
	for ns, veths := range own {
		out := run(t, "ip", "-n", ns, "-o", "link", "show")
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			got = append(got, name)
			if name == "lo" {
				continue
			}
			ok := false
			for _, v := range veths {
				ok = ok || v == name
			}
			if !ok {
				t.Fatalf("namespace %s has interface %q beyond lo and its veths", ns, name)
			}
			peerNS := ""
			if i := strings.Index(line, "link-netns "); i >= 0 {
				peerNS = strings.Fields(line[i+len("link-netns "):])[0]
			}
			if _, ours := own[peerNS]; !ours {
				t.Fatalf("namespace %s: %s links to namespace %q, not one of ours", ns, name, peerNS)
			}
		}
		if len(got) != 1+len(veths) {
			t.Fatalf("namespace %s has interfaces %q, want lo and %q", ns, got, veths)
		}
		def := strings.TrimSpace(run(t, "ip", "-n", ns, "route", "show", "default"))
		switch {
		case ns == n.home && def != "default via "+routerLAN+" dev "+n.hv:
			t.Fatalf("home's default route %q, want only via the router", def)
		case ns != n.home && def != "":
			t.Fatalf("namespace %s has a default route %q", ns, def)
		}
		if v6 := strings.TrimSpace(run(t, "ip", "-n", ns, "-6", "route", "show", "default")); v6 != "" {
			t.Fatalf("namespace %s has an IPv6 default route %q", ns, v6)
		}
	}
}

// nftRules: the router forwards home to internet and what miniupnpd
// opens, nothing else, and masquerades home behind its WAN address.
func (n *natNet) nftRules() string {
	return fmt.Sprintf(`table inet nodenat {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "%[1]s" oifname "%[2]s" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "%[2]s" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`, n.rl, n.rw)
}

// miniupnpdConf: man miniupnpd(8) and the sample config: the external
// interface, the LAN one to listen on, which protocols, our nftables
// table and chains, and "allow" rules for home's subnet only.
func (n *natNet) miniupnpdConf(upnp, natpmp bool) string {
	yn := map[bool]string{true: "yes", false: "no"}
	return fmt.Sprintf(`ext_ifname=%s
listening_ip=%s
http_port=0
enable_upnp=%s
enable_natpmp=%s
secure_mode=yes
system_uptime=yes
ext_perform_stun=yes
ext_stun_host=%s
ext_stun_port=3478
upnp_table_name=nodenat
upnp_nat_table_name=nodenat
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
uuid=3f1b5c1e-7c5d-4b8e-9a43-6c2a1d0e5b11
allow 1024-65535 10.200.1.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`, n.rw, n.rl, yn[upnp], yn[natpmp], internetIP)
}

// startIn starts a program in a namespace; it is ended (by its PID:
// SIGINT, then SIGKILL) at the end of the test if it has not ended before.
func startIn(t *testing.T, ns string, args ...string) *testutil.Proc {
	t.Helper()
	// ip netns exec execs the program: the PID is the program's.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return testutil.StartProc(t, filepath.Base(args[0]), cmd, testutil.ProcOptions{Signal: os.Interrupt, Grace: 5 * time.Second})
}

func buildNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "node")
	if out, err := exec.Command("go", "build", "-o", bin, "node/cmd/node").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestNATHelperSTUN is not a test: run by TestNATNamespaces inside the
// internet namespace, it is the STUN responder miniupnpd asks (RFC 5389
// binding requests, answered with XOR-MAPPED-ADDRESS).
func TestNATHelperSTUN(t *testing.T) {
	addr := os.Getenv("NODE_NAT_STUN")
	if addr == "" {
		t.Skip("run by TestNATNamespaces")
	}
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 20 || buf[0] != 0 || buf[1] != 1 {
			continue
		}
		ua := from.(*net.UDPAddr)
		ip4 := ua.IP.To4()
		if ip4 == nil {
			continue
		}
		resp := make([]byte, 32)
		binary.BigEndian.PutUint16(resp[0:], 0x0101) // binding success
		binary.BigEndian.PutUint16(resp[2:], 12)
		copy(resp[4:20], buf[4:20]) // magic cookie and transaction ID
		binary.BigEndian.PutUint16(resp[20:], 0x0020)
		binary.BigEndian.PutUint16(resp[22:], 8)
		resp[25] = 1 // IPv4
		binary.BigEndian.PutUint16(resp[26:], uint16(ua.Port)^0x2112)
		for i := range 4 {
			resp[28+i] = ip4[i] ^ buf[4+i]
		}
		_, _ = pc.WriteTo(resp, from)
	}
}

// TestNATNamespaces: node behind a NAT maps its port by UPnP, or by
// NAT-PMP, and a peer on the other side fetches from it through the
// mapping; with --no-port-mapping that peer cannot connect.
func TestNATNamespaces(t *testing.T) {
	natNeeds(t)
	bin := buildNode(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	// A torrent of 4 MiB of random data.
	src := t.TempDir()
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(src, "blob"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	tor := filepath.Join(t.TempDir(), "blob.torrent")
	run(t, bin, "create", filepath.Join(src, "blob"), "-o", tor)
	infoHash := ""
	for _, line := range strings.Split(run(t, bin, "info", tor), "\n") {
		if v, ok := strings.CutPrefix(line, "info-hash:"); ok {
			infoHash = strings.TrimSpace(v)
		}
	}
	if len(infoHash) != 40 {
		t.Fatalf("no info-hash in node info's output")
	}
	boot := internetIP + ":6881"

	for _, c := range []struct {
		name         string
		upnp, natpmp bool
		mapping      bool
		libtorrent   bool // the peer outside is libtorrent, not node fetch
	}{
		{"UPnP", true, false, true, false},
		{"NAT-PMP", false, true, true, false},
		{"off", true, true, false, false},
		{"libtorrent", true, true, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.libtorrent {
				if out, err := exec.Command(ltPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
					t.Skipf("%s cannot import libtorrent (apt-get install python3-libtorrent): %v %s", ltPython, err, out)
				}
			}
			n := newNATNet(t)
			n.check(t) // before anything runs in them

			dir := t.TempDir()
			rules := filepath.Join(dir, "rules.nft")
			if err := os.WriteFile(rules, []byte(n.nftRules()), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, "ip", "netns", "exec", n.router, "nft", "-f", rules)
			conf := filepath.Join(dir, "miniupnpd.conf")
			if err := os.WriteFile(conf, []byte(n.miniupnpdConf(c.upnp, c.natpmp)), 0o644); err != nil {
				t.Fatal(err)
			}

			stun := exec.Command("ip", "netns", "exec", n.inet, self, "-test.run=^TestNATHelperSTUN$")
			stun.Env = append(os.Environ(), "NODE_NAT_STUN="+stunAddr)
			stun.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := stun.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = stun.Process.Kill(); _ = stun.Wait() })

			mu := startIn(t, n.router, "miniupnpd", "-d", "-f", conf, "-P", filepath.Join(dir, "miniupnpd.pid"))
			testutil.WaitFor(t, 30*time.Second, "miniupnpd to enable port forwarding (STUN)", func() bool {
				out := mu.Stdout.String() + mu.Stderr.String()
				return strings.Contains(out, "Port forwarding is now enabled") ||
					strings.Contains(out, "unrestricted full-cone NAT")
			})

			startIn(t, n.inet, bin, "dht", "--no-port-mapping", "--state-dir=", "--listen", boot, "--bootstrap", "",
				"--status-interval", "0")

			seedArgs := []string{bin, "seed", "--state-dir=", "--json", "--listen", fmt.Sprintf("%s:%d", homeIP, peerPort),
				"--bootstrap", boot, "--dir", src, tor}
			if !c.mapping {
				seedArgs = append(seedArgs[:2], append([]string{"--no-port-mapping"}, seedArgs[2:]...)...)
			}
			seed := startIn(t, n.home, seedArgs...)
			if c.mapping {
				ev := waitEvent(t, &seed.Stdout, "port_mapping", 30*time.Second)
				t.Logf("seed's port_mapping event: %v", ev)
				method := c.name
				if c.libtorrent {
					method = "NAT-PMP" // tried first
				}
				if ev["mapped"] != true || ev["method"] != method || ev["tcp"] != float64(peerPort) || ev["udp"] != float64(peerPort) {
					t.Fatalf("port_mapping event %v, want %s mapping %d", ev, c.name, peerPort)
				}
				rules := run(t, "ip", "netns", "exec", n.router, "nft", "list", "chain", "inet", "nodenat", "prerouting_miniupnpd")
				if !strings.Contains(rules, "dport "+strconv.Itoa(peerPort)) {
					t.Fatalf("no forwarding of %d on the router:\n%s", peerPort, rules)
				}
			}

			// The seed's announce reaches the DHT node from the router's
			// address, and names the port it mapped.
			want := fmt.Sprintf("%s:%d", routerWAN, peerPort)
			testutil.WaitFor(t, 60*time.Second, "the seed's announce in the DHT", func() bool {
				out, _ := exec.Command("ip", "netns", "exec", n.inet, bin, "peers", "--state-dir=", "--listen", internetIP+":0",
					"--bootstrap", boot, "--timeout", "5s", infoHash).Output()
				return strings.Contains(string(out), want)
			})

			// A direct TCP connection to the announced address, from the
			// internet side.
			dial := exec.Command("ip", "netns", "exec", n.inet, "timeout", "3", "bash", "-c",
				fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", routerWAN, peerPort))
			dialErr := dial.Run()

			dst := t.TempDir()
			fetchTimeout := "60s"
			if !c.mapping {
				fetchTimeout = "15s"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			fetch := exec.CommandContext(ctx, "ip", "netns", "exec", n.inet, bin, "fetch", "--no-port-mapping", "--state-dir=", "--no-seed",
				"--listen", internetIP+":0", "--bootstrap", boot, "--dir", dst, "--timeout", fetchTimeout, tor)
			if c.libtorrent {
				script := filepath.Join(dir, "ltfetch.py")
				if err := os.WriteFile(script, []byte(ltFetchScript), 0o644); err != nil {
					t.Fatal(err)
				}
				fetch = exec.CommandContext(ctx, "ip", "netns", "exec", n.inet, ltPython, script, internetIP, tor, dst, routerWAN,
					strconv.Itoa(peerPort), "60")
			}
			fetch.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			begin := time.Now()
			fout, ferr := fetch.CombinedOutput()
			took := time.Since(begin)

			if !c.mapping {
				if dialErr == nil {
					t.Fatalf("without port mapping, a TCP connection to %s succeeded", want)
				}
				var ee *exec.ExitError
				if ferr == nil || !errors.As(ferr, &ee) || ee.ExitCode() != 4 {
					t.Fatalf("without port mapping, fetch: %v, want exit 4 (no peers)\n%s", ferr, testutil.Tail(string(fout), 2000))
				}
				t.Logf("without port mapping: dial %v; fetch exit 4 after %v", dialErr, took.Round(time.Millisecond))
				return
			}
			if dialErr != nil {
				t.Fatalf("a TCP connection to the mapped %s failed: %v", want, dialErr)
			}
			if ferr != nil {
				t.Fatalf("fetch through the mapping: %v\n%s", ferr, testutil.Tail(string(fout), 3000))
			}
			got, err := os.ReadFile(filepath.Join(dst, "blob"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("fetched data differs (%v)", err)
			}
			t.Logf("%s: fetched 4 MiB through %s in %v", c.name, want, took.Round(time.Millisecond))
			if c.libtorrent {
				t.Logf("libtorrent: %s", strings.TrimSpace(string(fout)))
			}

			// Removed on exit.
			seed.Stop(os.Interrupt, 10*time.Second)
			testutil.WaitFor(t, 10*time.Second, "the mapping's removal", func() bool {
				rules := run(t, "ip", "netns", "exec", n.router, "nft", "list", "chain", "inet", "nodenat", "prerouting_miniupnpd")
				return !strings.Contains(rules, "dport "+strconv.Itoa(peerPort))
			})
		})
	}
}

// ltPython is Debian's Python, which has python3-libtorrent.
const ltPython = "/usr/bin/python3"

// ltFetchScript downloads a .torrent with libtorrent from one peer given
// by address, the mapped one: every default that reaches beyond the
// namespace (DHT routers, LSD, UPnP, NAT-PMP) is off.
const ltFetchScript = `
import sys, time
import libtorrent as lt
ip, tor, save, peer_ip, peer_port, timeout = sys.argv[1:7]
deadline = time.time() + float(timeout)
ses = lt.session({
    "listen_interfaces": ip + ":0",
    "outgoing_interfaces": ip,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_dht": False,
    "enable_ip_notifier": False,
    "dht_bootstrap_nodes": "",
    "max_retry_port_bind": 0,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
})
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(tor)
atp.save_path = save
h = ses.add_torrent(atp)
h.connect_peer((peer_ip, int(peer_port)))
last = 0
while time.time() < deadline:
    ses.wait_for_alert(250)
    ses.pop_alerts()
    s = h.status()
    if s.is_seeding:
        print("done", flush=True)
        sys.exit(0)
    if time.time() - last > 5:
        last = time.time()
        h.connect_peer((peer_ip, int(peer_port)))
        print("status", s.state, "progress %.3f" % s.progress, "peers", s.num_peers, flush=True)
print("timeout", flush=True)
sys.exit(1)
`

// waitEvent waits for a JSON event of kind on out.
func waitEvent(t *testing.T, out *testutil.Buffer, kind string, d time.Duration) map[string]any {
	t.Helper()
	var found map[string]any
	testutil.WaitFor(t, d, "a "+kind+" event", func() bool {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == kind {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}
