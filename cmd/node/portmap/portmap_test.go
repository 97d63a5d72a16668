package portmap

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
)

// Every test here talks to fakes on 127.0.207.x only: NATPMPGateway,
// RootURL and ssdpAddrs point discovery at them, so nothing is multicast
// and no real gateway is asked.

const port = 40001

func gateway(t *testing.T, host int, set func(*adversary.Gateway)) *adversary.Gateway {
	t.Helper()
	g, err := adversary.NewGateway("127.0.207."+strconv.Itoa(host), set)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// votes records what the mapper passes to the DHT's address vote.
type votes struct {
	mu  sync.Mutex
	got [][2]netip.Addr
}

func (v *votes) add(voter, ip netip.Addr) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.got = append(v.got, [2]netip.Addr{voter, ip})
}

func (v *votes) list() [][2]netip.Addr {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([][2]netip.Addr(nil), v.got...)
}

// natpmpConfig points the mapper at g's NAT-PMP server only.
func natpmpConfig(g *adversary.Gateway, v *votes) Config {
	return Config{TCPPort: port, UDPPort: port, NATPMPGateway: g.IP, NoUPnP: true, OnExternalIP: v.add,
		lease: 4 * time.Second, minRenew: 100 * time.Millisecond, retryAfter: time.Hour}
}

// upnpConfig points the mapper at g's UPnP description only.
func upnpConfig(g *adversary.Gateway, v *votes) Config {
	return Config{TCPPort: port, UDPPort: port, RootURL: g.RootURL, NoNATPMP: true, OnExternalIP: v.add,
		lease: time.Second, minRenew: 100 * time.Millisecond, retryAfter: time.Hour}
}

// routeTo is a route table whose default gateway is gw.
func routeTo(gw netip.Addr) func(netip.Addr) (netip.Addr, error) {
	return func(netip.Addr) (netip.Addr, error) { return gw, nil }
}

func start(t *testing.T, cfg Config) *Mapper {
	m := Start(cfg)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func waitMapped(t *testing.T, m *Mapper) Status {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "a mapping", func() bool { return m.Status().Mapped() })
	return m.Status()
}

func waitFailed(t *testing.T, m *Mapper) Status {
	t.Helper()
	testutil.WaitFor(t, 3*callTimeout, "a failure", func() bool { return m.Status().Err != nil })
	return m.Status()
}

func TestNATPMPMapRenewRemove(t *testing.T) {
	g := gateway(t, 1, func(g *adversary.Gateway) {
		g.Lifetime = func(uint32) uint32 { return 1 } // renew every minRenew
	})
	var v votes
	m := start(t, natpmpConfig(g, &v))
	st := waitMapped(t, m)
	want := netip.MustParseAddr("198.51.100.7")
	if st.Method != "NAT-PMP" || st.TCP != port || st.UDP != port || st.ExternalIP != want || st.Gateway != g.IP {
		t.Fatalf("status %+v", st)
	}
	if s := st.String(); s != "198.51.100.7:40001 (NAT-PMP)" {
		t.Errorf("status line %q", s)
	}
	testutil.WaitFor(t, 10*time.Second, "renewals", func() bool {
		a, _ := g.Count("tcp:40001")
		b, _ := g.Count("udp:40001")
		return a >= 3 && b >= 3
	})
	g.Lock()
	if g.Leases[0] != 4 {
		t.Errorf("asked a lease of %d s, want 4", g.Leases[0])
	}
	g.Unlock()
	if got := v.list(); len(got) == 0 || got[0] != [2]netip.Addr{g.IP, want} {
		t.Errorf("votes %v, want the gateway voting for %v", got, want)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tcp:40001", "udp:40001"} {
		if _, d := g.Count(k); d != 1 || g.Mapped(k) != 0 {
			t.Errorf("%s: %d deletes, still mapped to %d", k, d, g.Mapped(k))
		}
	}
	if m.Status().Mapped() {
		t.Error("still mapped after Close")
	}
}

func TestUPnPMapRenewRemove(t *testing.T) {
	for _, c := range []struct {
		name string
		v    int
		ppp  bool
	}{{"IGDv1", 1, false}, {"IGDv2", 2, false}, {"PPP", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			g := gateway(t, 10+c.v+btoi(c.ppp), func(g *adversary.Gateway) { g.IGDVersion, g.PPP = c.v, c.ppp })
			var v votes
			m := start(t, upnpConfig(g, &v))
			st := waitMapped(t, m)
			if st.Method != "UPnP" || st.TCP != port || st.UDP != port || st.ExternalIP != netip.MustParseAddr("198.51.100.7") {
				t.Fatalf("status %+v", st)
			}
			testutil.WaitFor(t, 10*time.Second, "renewals", func() bool {
				a, _ := g.Count("tcp:40001")
				return a >= 3
			})
			g.Lock()
			if g.Leases[0] != 1 {
				t.Errorf("asked a lease of %d s, want 1", g.Leases[0])
			}
			g.Unlock()
			if len(v.list()) == 0 {
				t.Error("no vote")
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"tcp:40001", "udp:40001"} {
				if _, d := g.Count(k); d != 1 || g.Mapped(k) != 0 {
					t.Errorf("%s: %d deletes, still mapped to %d", k, d, g.Mapped(k))
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 5
	}
	return 0
}

// TestNATPMPFirstThenUPnP: with no NAT-PMP server at the gateway, UPnP is
// used.
func TestNATPMPFirstThenUPnP(t *testing.T) {
	g := gateway(t, 20, nil)
	cfg := upnpConfig(g, &votes{})
	cfg.NoNATPMP = false
	cfg.NATPMPGateway = netip.MustParseAddr("127.0.207.21") // nothing listens
	st := waitMapped(t, start(t, cfg))
	if st.Method != "UPnP" {
		t.Fatalf("status %+v", st)
	}
	cfg = natpmpConfig(g, &votes{})
	cfg.NoUPnP, cfg.RootURL = false, g.RootURL
	if st := waitMapped(t, start(t, cfg)); st.Method != "NAT-PMP" {
		t.Fatalf("with both: status %+v, want NAT-PMP first", st)
	}
}

func TestSSDPDiscovery(t *testing.T) {
	g := gateway(t, 30, nil)
	ssdp, err := g.ServeSSDP()
	if err != nil {
		t.Fatal(err)
	}
	cfg := upnpConfig(g, &votes{})
	cfg.RootURL, cfg.ssdpAddrs, cfg.routes = "", []netip.AddrPort{ssdp}, routeTo(g.IP)
	cfg.LocalIP = g.IP
	if st := waitMapped(t, start(t, cfg)); st.Method != "UPnP" || st.Gateway != g.IP {
		t.Fatalf("status %+v", st)
	}
}

// TestSSDPLiars: answers naming another host, or not 200, or garbage,
// find no gateway; a flood of them is read up to maxSSDPAnswers only.
func TestSSDPLiars(t *testing.T) {
	g := gateway(t, 31, nil)
	ssdp, err := g.ServeSSDP()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		loc    string
		status int
		want   string
	}{
		{"http://127.0.207.99:80/rootDesc.xml", 0, "names another host"},
		{"file:///etc/passwd", 0, "scheme"},
		{"", 404, "status 404"},
	} {
		g.Lock()
		g.SSDPLocation, g.SSDPStatus = c.loc, c.status
		g.Unlock()
		// The search listens on past a bad answer until its deadline:
		// the context's, when sooner than ssdpWait, is the same path.
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := ssdpSearch(lctx, []netip.AddrPort{ssdp}, g.IP, netip.Addr{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("location %q status %d: error %v, want %q", c.loc, c.status, err, c.want)
		}
	}

	// Nobody answers: the search ends after ssdpWait.
	quiet, err := net.ListenPacket("udp4", "127.0.207.33:0")
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	begin := time.Now()
	_, err = ssdpSearch(ctx, []netip.AddrPort{quiet.LocalAddr().(*net.UDPAddr).AddrPort()}, g.IP, netip.Addr{})
	if took := time.Since(begin); err == nil || took > ssdpWait+time.Second {
		t.Errorf("silence: %v after %v, want an error within %v", err, took, ssdpWait)
	}

	// A flood: every search is answered by many garbage datagrams.
	pc, err := net.ListenPacket("udp4", "127.0.207.32:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for range 4 * maxSSDPAnswers {
				_, _ = pc.WriteTo([]byte("HTTP/1.1 200 OK\r\nST: x\r\n\r\n"), from)
			}
		}
	}()
	_, err = ssdpSearch(ctx, []netip.AddrPort{pc.LocalAddr().(*net.UDPAddr).AddrPort()}, g.IP, netip.Addr{})
	if err == nil || !strings.Contains(err.Error(), "no usable answer in 32") {
		t.Errorf("flood: %v", err)
	}
}

// TestNATPMPLiars: a gateway that lies gets a clear error or its answer
// used, never a hang, a port 0 or a vote for a non-public address.
func TestNATPMPLiars(t *testing.T) {
	for i, c := range []struct {
		name    string
		set     func(g *adversary.Gateway)
		mapped  bool
		errHas  string
		port    uint16
		ip      string // external address shown ("": none)
		noVotes bool
	}{
		{name: "lease 0", set: func(g *adversary.Gateway) { g.Lifetime = func(uint32) uint32 { return 0 } }, errHas: "lease of 0"},
		{name: "absurd lease", set: func(g *adversary.Gateway) { g.Lifetime = func(uint32) uint32 { return 1<<32 - 1 } },
			mapped: true, port: port, ip: "198.51.100.7"},
		{name: "other port", set: func(g *adversary.Gateway) { g.Port = func(p uint16) uint16 { return p + 1000 } },
			mapped: true, port: port + 1000, ip: "198.51.100.7"},
		{name: "port 0", set: func(g *adversary.Gateway) { g.Port = func(uint16) uint16 { return 0 } }, errHas: "port 0"},
		{name: "garbage", set: func(g *adversary.Gateway) { g.PMPReply = []byte("garbage garbage garbage!") }, errHas: "version"},
		{name: "short", set: func(g *adversary.Gateway) { g.PMPReply = []byte{0, 128} }, errHas: "size"},
		{name: "refused", set: func(g *adversary.Gateway) { g.PMPReply = []byte{0, 130, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} }, errHas: "Not Authorized"},
		{name: "PCP only", set: func(g *adversary.Gateway) { g.PMPReply = []byte{2, 128, 0, 1} }, errHas: "PCP"},
		{name: "silent", set: func(g *adversary.Gateway) { g.Silent = true }, errHas: "Timed out"},
		{name: "private external", set: func(g *adversary.Gateway) { g.ExternalIP = "10.1.2.3" },
			mapped: true, port: port, ip: "10.1.2.3", noVotes: true},
		{name: "unspecified external", set: func(g *adversary.Gateway) { g.ExternalIP = "0.0.0.0" },
			mapped: true, port: port, noVotes: true},
		{name: "loopback external", set: func(g *adversary.Gateway) { g.ExternalIP = "127.0.0.1" },
			mapped: true, port: port, noVotes: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := gateway(t, 40+i, c.set)
			var v votes
			cfg := natpmpConfig(g, &v)
			m := start(t, cfg)
			check(t, m, &v, c.mapped, c.errHas, c.port, c.ip, c.noVotes)
		})
	}
}

// errSays reports whether err says what; a silent gateway's "timeout" is
// worded by whichever limit fires first: ours, the HTTP client's
// ("Client.Timeout"), or the context's ("deadline exceeded").
func errSays(err error, what string) bool {
	msg := strings.ToLower(err.Error())
	if what == "timeout" && strings.Contains(msg, "deadline exceeded") {
		return true
	}
	return strings.Contains(msg, strings.ToLower(what))
}

func check(t *testing.T, m *Mapper, v *votes, mapped bool, errHas string, port uint16, ip string, noVotes bool) {
	t.Helper()
	if !mapped {
		st := waitFailed(t, m)
		if st.Mapped() || !errSays(st.Err, errHas) {
			t.Fatalf("status %+v, want an error with %q", st, errHas)
		}
		if !strings.HasPrefix(st.String(), "not mapped: ") {
			t.Errorf("status line %q", st.String())
		}
		return
	}
	st := waitMapped(t, m)
	if st.TCP != port || st.UDP != port {
		t.Errorf("ports %d/%d, want %d", st.TCP, st.UDP, port)
	}
	if (ip == "" && st.ExternalIP.IsValid()) || (ip != "" && st.ExternalIP.String() != ip) {
		t.Errorf("external %v, want %q", st.ExternalIP, ip)
	}
	// The mapper shows its status before it votes.
	if !noVotes {
		testutil.WaitFor(t, 5*time.Second, "a vote", func() bool { return len(v.list()) > 0 })
	} else if got := v.list(); len(got) > 0 {
		t.Errorf("voted %v", got)
	}
}

// TestUPnPLiars: the same for a UPnP gateway.
func TestUPnPLiars(t *testing.T) {
	huge := []byte(`<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><friendlyName>` +
		strings.Repeat("x", maxDescriptionBytes) + `</friendlyName></device></root>`)
	for i, c := range []struct {
		name    string
		set     func(g *adversary.Gateway)
		mapped  bool
		errHas  string
		port    uint16
		ip      string
		noVotes bool
	}{
		{name: "garbage description", set: func(g *adversary.Gateway) { g.Description = []byte("<<<garbage") }, errHas: "device description"},
		{name: "huge description", set: func(g *adversary.Gateway) { g.Description = huge }, errHas: "65536 bytes"},
		{name: "no WAN service", set: func(g *adversary.Gateway) {
			g.Description = []byte(`<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>x</deviceType></device></root>`)
		}, errHas: "no WANIPConnection"},
		{name: "control elsewhere", set: func(g *adversary.Gateway) {
			g.Description = []byte(`<root xmlns="urn:schemas-upnp-org:device-1-0"><URLBase>http://127.0.207.99:1/</URLBase><device>` +
				`<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>` +
				`<controlURL>/ctl</controlURL></service></serviceList></device></root>`)
		}, errHas: "another host"},
		{name: "garbage SOAP", set: func(g *adversary.Gateway) { g.SOAP = []byte("<<<not xml") }, errHas: "decoding"},
		{name: "huge SOAP", set: func(g *adversary.Gateway) {
			g.SOAP = []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>` + strings.Repeat("x", maxSOAPBytes))
		}, errHas: "16384"},
		{name: "refused", set: func(g *adversary.Gateway) { g.UPnPError = 606 }, errHas: "SOAP fault"},
		{name: "conflict v1", set: func(g *adversary.Gateway) { g.UPnPError = upnpConflict }, errHas: "SOAP fault"},
		{name: "conflict v2", set: func(g *adversary.Gateway) {
			g.IGDVersion, g.UPnPError = 2, upnpConflict
			g.Port = func(p uint16) uint16 { return p + 7 }
		}, mapped: true, port: port + 7, ip: "198.51.100.7"},
		{name: "reserved port 0", set: func(g *adversary.Gateway) {
			g.IGDVersion, g.UPnPError = 2, upnpConflict
			g.Port = func(uint16) uint16 { return 0 }
		}, errHas: "port 0"},
		{name: "permanent only", set: func(g *adversary.Gateway) { g.UPnPError = upnpOnlyPermanentLease },
			mapped: true, port: port, ip: "198.51.100.7"},
		{name: "silent", set: func(g *adversary.Gateway) { g.Silent = true }, errHas: "timeout"},
		{name: "garbage external", set: func(g *adversary.Gateway) { g.ExternalIP = "<b>not an address</b>" },
			mapped: true, port: port, noVotes: true},
		{name: "private external", set: func(g *adversary.Gateway) { g.ExternalIP = "192.168.0.2" },
			mapped: true, port: port, ip: "192.168.0.2", noVotes: true},
		{name: "shared external", set: func(g *adversary.Gateway) { g.ExternalIP = "100.64.1.1" },
			mapped: true, port: port, ip: "100.64.1.1", noVotes: true},
		{name: "IPv6 external", set: func(g *adversary.Gateway) { g.ExternalIP = "2001:db8::1" },
			mapped: true, port: port, noVotes: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := gateway(t, 60+i, c.set)
			var v votes
			m := start(t, upnpConfig(g, &v))
			check(t, m, &v, c.mapped, c.errHas, c.port, c.ip, c.noVotes)
		})
	}
}

// TestRenewAfterBounds: whatever lease a gateway grants, renewals come
// no more often than minRenew and no less often than half our Lease.
func TestRenewAfterBounds(t *testing.T) {
	m := &Mapper{cfg: Config{lease: Lease, minRenew: minRenew}}
	for _, c := range []struct{ granted, want time.Duration }{
		{0, minRenew},
		{time.Second, minRenew},
		{20 * time.Minute, 10 * time.Minute},
		{Lease, Lease / 2},
		{(1<<32 - 1) * time.Second, Lease / 2},
	} {
		if got := m.renewAfter(c.granted); got != c.want {
			t.Errorf("granted %v: renew after %v, want %v", c.granted, got, c.want)
		}
	}
}

// TestCloseBounded: a gateway that stops answering holds Close for at
// most RemoveTimeout.
func TestCloseBounded(t *testing.T) {
	for _, proto := range []string{"NAT-PMP", "UPnP"} {
		t.Run(proto, func(t *testing.T) {
			g := gateway(t, 90+len(proto), nil)
			cfg := natpmpConfig(g, &votes{})
			if proto == "UPnP" {
				cfg = upnpConfig(g, &votes{})
			}
			m := Start(cfg)
			waitMapped(t, m)
			g.Lock()
			g.Silent = true
			g.Unlock()
			begin := time.Now()
			err := m.Close()
			if took := time.Since(begin); took > CloseTimeout+time.Second {
				t.Errorf("Close took %v, bound %v", took, CloseTimeout)
			}
			if err == nil {
				t.Error("Close of a silent gateway: no error")
			}
		})
	}
}

func TestParseRoutes(t *testing.T) {
	const table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
	gw, err := parseRoutes(strings.NewReader(table), "")
	if err != nil || gw != netip.MustParseAddr("192.168.1.1") {
		t.Fatalf("gateway %v, %v", gw, err)
	}
	for _, bad := range []string{
		"",
		"Iface\tDestination\n",
		"h\neth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\n", // no gateway flag
		"h\neth0\t00000000\tZZZZ\t0003\t0\t0\t0\t00000000\n",
		"h\neth0\t00000000\t0101A8C0\tQQ\t0\t0\t0\t00000000\n",
	} {
		if gw, err := parseRoutes(strings.NewReader(bad), ""); err == nil {
			t.Errorf("%q: gateway %v", bad, gw)
		}
	}
}

// TestRenewalRefused: a gateway that refuses a renewal shows as not
// mapped, and what it mapped before is still removed on Close.
func TestRenewalRefused(t *testing.T) {
	g := gateway(t, 100, nil)
	m := Start(upnpConfig(g, &votes{}))
	waitMapped(t, m)
	g.Lock()
	g.UPnPError = 606
	g.Unlock()
	testutil.WaitFor(t, 10*time.Second, "the refused renewal", func() bool {
		st := m.Status()
		return !st.Mapped() && st.Err != nil
	})
	g.Lock()
	g.UPnPError = 0
	g.Unlock()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tcp:40001", "udp:40001"} {
		if _, d := g.Count(k); d != 1 || g.Mapped(k) != 0 {
			t.Errorf("%s: %d deletes, still mapped to %d", k, d, g.Mapped(k))
		}
	}
}

// TestRetryPaced: after a failure the next attempt waits retryAfter, so
// a refusing gateway is not hammered.
func TestRetryPaced(t *testing.T) {
	refused := []byte{0, 128, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0}
	g := gateway(t, 101, func(g *adversary.Gateway) { g.PMPReply = refused })
	cfg := natpmpConfig(g, &votes{})
	cfg.retryAfter = 200 * time.Millisecond
	start(t, cfg)
	var times []time.Time
	testutil.WaitFor(t, 10*time.Second, "three attempts", func() bool {
		g.Lock()
		defer g.Unlock()
		times = append([]time.Time(nil), g.PMPTimes...)
		return len(times) >= 3
	})
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < cfg.retryAfter {
			t.Errorf("attempt %d came %v after the one before, want at least %v", i, gap, cfg.retryAfter)
		}
	}
	if retryAfter < time.Minute {
		t.Errorf("retryAfter %v: a failing gateway would be asked too often", retryAfter)
	}
}
