package portmap

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
)

// Mappings must not outlive the mapper: not one whose answer was lost,
// not one a renewal still resending re-creates after Close removed it,
// not one on a gateway we moved away from.

// checkRemoved fails unless every key ends removed on g, with no add
// after its last delete. It first waits out callTimeout from closed:
// until then a NAT-PMP add begun before Close may still resend, and a
// resend after the delete would map the port again.
func checkRemoved(t *testing.T, g *adversary.Gateway, closed time.Time, keys ...string) {
	t.Helper()
	// Waiting out the library's bound, not for an event: what is checked
	// is that nothing comes in that window.
	time.Sleep(time.Until(closed.Add(callTimeout + 100*time.Millisecond)))
	g.Lock()
	defer g.Unlock()
	for _, k := range keys {
		last := ""
		for _, e := range g.Log {
			if strings.HasSuffix(e, " "+k) {
				last = e
			}
		}
		if last != "delete "+k || g.Mappings[k] != 0 {
			t.Errorf("%s: last request %q, mapped to %d; log %q", k, last, g.Mappings[k], g.Log)
		}
	}
}

// TestCloseRemovesLostAdd: the gateway maps the first add but its answer
// is lost; Close comes while the add is still in flight and removes it.
func TestCloseRemovesLostAdd(t *testing.T) {
	for i, proto := range []string{"NAT-PMP", "UPnP"} {
		t.Run(proto, func(t *testing.T) {
			g := gateway(t, 110+i, func(g *adversary.Gateway) { g.LoseAddReplies = true })
			cfg := natpmpConfig(g, &votes{})
			if proto == "UPnP" {
				cfg = upnpConfig(g, &votes{})
			}
			m := Start(cfg)
			testutil.WaitFor(t, 10*time.Second, "the first add", func() bool {
				a, _ := g.Count("tcp:40001")
				return a >= 1
			})
			closed := time.Now()
			_ = m.Close()
			checkRemoved(t, g, closed, "tcp:40001")
			if g.Mapped("udp:40001") != 0 {
				t.Error("udp left mapped")
			}
		})
	}
}

// TestCloseDuringRenewal: a renewal whose answer is lost is in flight
// when Close comes; its resends must not re-create what Close removed.
func TestCloseDuringRenewal(t *testing.T) {
	g := gateway(t, 112, func(g *adversary.Gateway) {
		g.Lifetime = func(uint32) uint32 { return 1 } // renew every minRenew
	})
	m := Start(natpmpConfig(g, &votes{}))
	waitMapped(t, m)
	adds, _ := g.Count("tcp:40001")
	g.Lock()
	g.LoseAddReplies = true
	g.Unlock()
	testutil.WaitFor(t, 10*time.Second, "a renewal", func() bool {
		a, _ := g.Count("tcp:40001")
		return a > adds
	})
	closed := time.Now()
	_ = m.Close()
	checkRemoved(t, g, closed, "tcp:40001", "udp:40001")
}

// TestMovedGatewayRemovesOld: the gateway refuses a renewal, and
// rediscovery finds another one; what the first mapped is removed from
// it before we map on the second.
func TestMovedGatewayRemovesOld(t *testing.T) {
	a := gateway(t, 113, nil)
	b := gateway(t, 114, func(g *adversary.Gateway) { g.SSDPStatus = 404 })
	ssdpA, err := a.ServeSSDP()
	if err != nil {
		t.Fatal(err)
	}
	ssdpB, err := b.ServeSSDP()
	if err != nil {
		t.Fatal(err)
	}
	cfg := upnpConfig(a, &votes{})
	cfg.RootURL, cfg.ssdpAddrs = "", []netip.AddrPort{ssdpA, ssdpB}
	cfg.LocalIP = a.IP // not 0.0.0.0: the search stays on loopback
	cfg.routes = func(netip.Addr) (netip.Addr, error) { return netip.Addr{}, errors.New("no default route") }
	cfg.retryAfter = 200 * time.Millisecond
	m := start(t, cfg)
	if st := waitMapped(t, m); st.Gateway != a.IP {
		t.Fatalf("status %+v, want mapped on %v", st, a.IP)
	}
	a.Lock()
	a.UPnPError, a.SSDPStatus = 606, 404
	a.Unlock()
	b.Lock()
	b.SSDPStatus = 0
	b.Unlock()
	testutil.WaitFor(t, 10*time.Second, "mapped on the second gateway", func() bool {
		st := m.Status()
		return st.Mapped() && st.Gateway == b.IP
	})
	for _, k := range []string{"tcp:40001", "udp:40001"} {
		if _, d := a.Count(k); d != 1 || a.Mapped(k) != 0 {
			t.Errorf("first gateway %s: %d deletes, still mapped to %d", k, d, a.Mapped(k))
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tcp:40001", "udp:40001"} {
		if b.Mapped(k) != 0 {
			t.Errorf("second gateway %s still mapped", k)
		}
	}
}

// TestSSDPOnlyTheGateway: another host on the LAN answering the SSDP
// search, first or alone, does not become the gateway while the default
// gateway is known.
func TestSSDPOnlyTheGateway(t *testing.T) {
	gw := gateway(t, 115, nil)
	liar := gateway(t, 116, func(g *adversary.Gateway) { g.ExternalIP = "203.0.113.66" })
	ssdpGW, err := gw.ServeSSDP()
	if err != nil {
		t.Fatal(err)
	}
	ssdpLiar, err := liar.ServeSSDP()
	if err != nil {
		t.Fatal(err)
	}
	both := []netip.AddrPort{ssdpLiar, ssdpLiar, ssdpGW} // the liar's answers come first
	cfg := upnpConfig(gw, &votes{})
	cfg.RootURL, cfg.ssdpAddrs, cfg.routes = "", both, routeTo(gw.IP)
	cfg.LocalIP = gw.IP // not 0.0.0.0: the search stays on loopback
	st := waitMapped(t, start(t, cfg))
	if st.Gateway != gw.IP || st.ExternalIP != netip.MustParseAddr("198.51.100.7") {
		t.Fatalf("status %+v, want mapped on the default gateway %v", st, gw.IP)
	}
	if a, _ := liar.Count("tcp:40001"); a != 0 {
		t.Errorf("%d adds asked of the liar", a)
	}

	// The gateway does not speak UPnP: the liar's answer is still not taken.
	gw.Lock()
	gw.SSDPStatus = 404
	gw.Unlock()
	_, err = ssdpSearch(t.Context(), both, gw.IP, gw.IP)
	if err == nil || !strings.Contains(err.Error(), "not the gateway") {
		t.Errorf("liar alone: %v", err)
	}
	// No default gateway known: the first sensible answer is all we have.
	loc, err := ssdpSearch(t.Context(), both, gw.IP, netip.Addr{})
	if err != nil || loc.Hostname() != liar.IP.String() {
		t.Errorf("no known gateway: %v, %v", loc, err)
	}
}

// TestOnTCPPort: the external TCP port a gateway gives is told once, and
// again only when it changes.
func TestOnTCPPort(t *testing.T) {
	var mu sync.Mutex
	var told []uint16
	g := gateway(t, 117, func(g *adversary.Gateway) {
		g.Port = func(uint16) uint16 { return port + 1000 }
		g.Lifetime = func(uint32) uint32 { return 1 }
	})
	cfg := natpmpConfig(g, &votes{})
	cfg.OnTCPPort = func(p uint16) {
		mu.Lock()
		told = append(told, p)
		mu.Unlock()
	}
	m := start(t, cfg)
	waitMapped(t, m)
	testutil.WaitFor(t, 10*time.Second, "renewals", func() bool {
		a, _ := g.Count("tcp:40001")
		return a >= 3
	})
	g.Lock()
	g.Port = func(uint16) uint16 { return port + 2000 }
	g.Unlock()
	testutil.WaitFor(t, 10*time.Second, "the new port told", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(told) > 0 && told[len(told)-1] == port+2000
	})
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 2 || told[0] != port+1000 {
		t.Errorf("told %v, want [%d %d]", told, port+1000, port+2000)
	}
}
