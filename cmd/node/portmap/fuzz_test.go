package portmap

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// The decoders of what a LAN host sends us: SSDP answers (anyone on the
// LAN), device descriptions (the host an answer named) and the kernel's
// route table. Bad input is an error, never a panic; what they accept
// holds their checks.

func FuzzParseSSDP(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
		"LOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
		"LOCATION: http://10.0.0.1/x\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\n\r\n"))
	f.Add([]byte("garbage"))
	f.Add([]byte(""))
	from := netip.MustParseAddr("192.168.1.1")
	f.Fuzz(func(t *testing.T, b []byte) {
		loc, err := parseSSDP(b, from)
		if err != nil {
			return
		}
		if loc.Scheme != "http" || loc.Hostname() != from.String() {
			t.Fatalf("accepted %v from %v", loc, from)
		}
	})
}

func FuzzParseDescription(f *testing.F) {
	for _, v := range []string{"1", "2"} {
		f.Add([]byte(`<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>` +
			`<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:` + v + `</deviceType><deviceList><device>` +
			`<deviceList><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:` + v +
			`</serviceType><controlURL>/ctl</controlURL></service></serviceList></device></deviceList>` +
			`</device></deviceList></device></root>`))
	}
	f.Add([]byte(`<root xmlns="urn:schemas-upnp-org:device-1-0"><URLBase>http://10.9.9.9/</URLBase><device><serviceList><service>` +
		`<serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>/c</controlURL>` +
		`</service></serviceList></device></root>`))
	f.Add([]byte("<<<"))
	f.Add([]byte(strings.Repeat("<device>", 100)))
	loc, _ := url.Parse("http://192.168.1.1:5000/rootDesc.xml")
	f.Fuzz(func(t *testing.T, b []byte) {
		clients, err := parseDescription(b, loc)
		if err != nil {
			return
		}
		if len(clients) == 0 {
			t.Fatal("no error and no service")
		}
		for _, c := range clients {
			if u := c.GetServiceClient().Service.ControlURL.URL; u.Hostname() != loc.Hostname() {
				t.Fatalf("control URL %v on another host", &u)
			}
		}
	})
}

func FuzzParseRoutes(f *testing.F) {
	f.Add("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n" +
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n")
	f.Add("h\neth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		gw, err := parseRoutes(strings.NewReader(s), "")
		if err == nil && (!gw.Is4() || gw.IsUnspecified()) {
			t.Fatalf("gateway %v", gw)
		}
	})
}
