package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"node/cmd/node/portmap"
	"node/dht"
	"node/internal/adversary"
	"node/internal/testutil"
	"node/peer"
)

// TestPortMappingIsOneVoter: the external address a gateway reports is
// one voter in the DHT's BEP 42 tally, never enough on its own to adopt
// an address. The gateway is a loopback fake (portMapBase), so nothing is
// multicast and no real gateway is asked.
func TestPortMappingIsOneVoter(t *testing.T) {
	g, err := adversary.NewGateway("127.0.207.200", func(g *adversary.Gateway) { g.ExternalIP = "198.51.100.9" })
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	pc, err := net.ListenPacket("udp4", "127.0.207.201:0")
	if err != nil {
		t.Fatal(err)
	}
	node, err := dht.New(dht.Config{Conn: pc})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	f := dhtFlags{portMapOffered: true, portMapBase: portmap.Config{NATPMPGateway: g.IP, NoUPnP: true}}
	pm := f.startPortMapping(netip.IPv4Unspecified(), 40002, node.Addr().Port(), node, nil, zap.NewNop())
	if pm == nil {
		t.Fatal("no mapper")
	}
	defer closePortMapping(pm, zap.NewNop())
	testutil.WaitFor(t, 10*time.Second, "the mapping", func() bool { return pm.Status().Mapped() })
	if got := mappedText(pm.Status()); got != "198.51.100.9 tcp:40002 udp:"+itoa(node.Addr().Port())+" (NAT-PMP)" {
		t.Errorf("status %q", got)
	}
	var s dht.Stats
	testutil.WaitFor(t, 10*time.Second, "the gateway's vote", func() bool {
		s, err = node.Stats(t.Context())
		return err == nil && s.Voters == 1
	})
	if s.External.IsValid() {
		t.Fatalf("one gateway decided our address: %v", s.External)
	}

	// Off, or bound to loopback: no mapper.
	off := f
	off.noPortMapping = true
	if off.startPortMapping(netip.IPv4Unspecified(), 1, 1, node, nil, zap.NewNop()) != nil {
		t.Error("--no-port-mapping: mapper started")
	}
	if f.startPortMapping(netip.MustParseAddr("127.0.0.1"), 1, 1, node, nil, zap.NewNop()) != nil {
		t.Error("loopback: mapper started")
	}
	peers := dhtFlags{} // a subcommand without the flag
	if peers.startPortMapping(netip.IPv4Unspecified(), 1, 1, node, nil, zap.NewNop()) != nil {
		t.Error("a subcommand without --no-port-mapping: mapper started")
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// TestReportPortMapping: the mapped address is announced once, then on
// every progress line, and in --json as a "port_mapping" event and a
// "mapped" field.
func TestReportPortMapping(t *testing.T) {
	st := portmap.Status{Method: "UPnP", Gateway: netip.MustParseAddr("192.168.1.1"),
		ExternalIP: netip.MustParseAddr("198.51.100.9"), TCP: 6881, UDP: 6881}
	var out, errOut bytes.Buffer
	r := newReporter(&out, &errOut, false)
	r.portMapping(st)
	r.portMapping(st)
	r.progress(peer.Stats{HaveInfo: true, Length: 100, Done: 50}, time.Second)
	if got := errOut.String(); strings.Count(got, "port mapped: 198.51.100.9:6881 (UPnP)") != 1 ||
		!strings.Contains(got, "mapped 198.51.100.9:6881 (UPnP)") {
		t.Errorf("stderr %q", got)
	}

	out.Reset()
	r = newReporter(&out, &errOut, true)
	r.portMapping(st)
	r.progress(peer.Stats{HaveInfo: true, Length: 100, Done: 50}, time.Second)
	r.portMapping(portmap.Status{})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("events %q", lines)
	}
	var ev map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &ev)
	if ev["event"] != "port_mapping" || ev["external_ip"] != "198.51.100.9" || ev["tcp"] != 6881.0 || ev["method"] != "UPnP" || ev["mapped"] != true {
		t.Errorf("event %v", ev)
	}
	_ = json.Unmarshal([]byte(lines[1]), &ev)
	if ev["event"] != "progress" || ev["mapped"] != "198.51.100.9:6881 (UPnP)" {
		t.Errorf("progress %v", ev)
	}
	ev = nil
	_ = json.Unmarshal([]byte(lines[2]), &ev)
	if ev["event"] != "port_mapping" || ev["mapped"] != false {
		t.Errorf("lost %v", ev)
	}
}
