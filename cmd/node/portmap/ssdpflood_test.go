package portmap

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"node/internal/adversary"
)

func ssdpFlood(t *testing.T, host, burst int, endless bool) *adversary.SSDPFlood {
	t.Helper()
	f, err := adversary.NewSSDPFlood("127.0.207."+strconv.Itoa(host), burst, endless)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// A LAN host that floods the search with gateway answers before the
// router answers does not spend maxSSDPAnswers: the router's answer,
// which comes after them all, is still taken.
func TestSSDPFloodBeforeGateway(t *testing.T) {
	flood := ssdpFlood(t, 130, maxSSDPAnswers+8, false)
	gw := gateway(t, 131, func(g *adversary.Gateway) { g.SSDPHold = flood.Flooded })
	ssdp, err := gw.ServeSSDP()
	if err != nil {
		t.Fatal(err)
	}
	loc, err := ssdpSearch(context.Background(), []netip.AddrPort{flood.Addr, ssdp}, gw.IP, gw.IP)
	if err != nil || loc.Hostname() != gw.IP.String() {
		t.Fatalf("found %v, %v; want the gateway %v", loc, err, gw.IP)
	}
}

// An endless flood from another host ends the search after maxSSDPReads
// reads.
func TestSSDPReadsBound(t *testing.T) {
	flood := ssdpFlood(t, 132, 1, true)
	gw := gateway(t, 133, func(g *adversary.Gateway) { g.Silent = true })
	_, err := ssdpSearch(context.Background(), []netip.AddrPort{flood.Addr}, gw.IP, gw.IP)
	if err == nil || !strings.Contains(err.Error(), "in "+strconv.Itoa(maxSSDPReads)+" SSDP reads") {
		t.Fatalf("endless flood: %v", err)
	}
}

// The gateway is that of the default route of LocalIP's interface, the
// lowest metric first: on a host with two, the system's default route's
// gateway is no gateway of an address on the other interface.
func TestRoutesOfLocalIP(t *testing.T) {
	const table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"wlan0\t00000000\t0100000A\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
		"eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t00000000\t0201A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n"
	for iface, want := range map[string]string{"": "192.168.1.1", "eth0": "192.168.1.1", "wlan0": "10.0.0.1", "eth9": ""} {
		gw, err := parseRoutes(strings.NewReader(table), iface)
		if want == "" {
			if err == nil {
				t.Errorf("%q: gateway %v, want none", iface, gw)
			}
			continue
		}
		if err != nil || gw != netip.MustParseAddr(want) {
			t.Errorf("%q: gateway %v, %v; want %s", iface, gw, err, want)
		}
	}
	// 127.0.0.1 is on the loopback interface, which has no default route.
	if gw, err := defaultGateway(netip.MustParseAddr("127.0.0.1")); err == nil {
		t.Errorf("loopback's gateway: %v", gw)
	}
	if _, err := ifaceOf(netip.MustParseAddr("192.0.2.77")); err == nil {
		t.Error("an address of no interface has one")
	}
}
