// Package portmap keeps node's listening ports open on a home router:
// it maps the TCP peer port and the UDP DHT port on the gateway with
// NAT-PMP (RFC 6886, github.com/jackpal/go-nat-pmp) or UPnP IGD v1/v2
// (WANIPConnection:1/2 and WANPPPConnection:1, github.com/huin/goupnp),
// renews each mapping at half its lease (Lease asked, the gateway's
// answer clamped), and removes them on Close within RemoveTimeout.
//
// It is a host concern, not a protocol one: cmd/node starts a Mapper
// beside the DHT node and the torrent, shows its Status on the progress
// line, and passes the external address the gateway reports to the DHT's
// BEP 42 address vote, where the gateway is one voter among many and
// never decides alone. Only a public IPv4 address is passed on; a
// private one (a gateway behind another NAT) is shown but not voted.
//
// Discovery tries NAT-PMP first (one unicast exchange with the default
// route's gateway, read from /proc/net/route), then UPnP (an SSDP search
// to 239.255.255.250:1900, then the device description it names).
// Config.NATPMPGateway and Config.RootURL skip discovery, which is how
// tests point it at loopback fakes. PCP (RFC 6887) is not spoken: no
// maintained Go library offers it on its own; a PCP-only gateway is
// reported as such and UPnP is tried.
//
// A gateway is not trusted: every exchange is bounded in time (a NAT-PMP
// exchange with its retries, an HTTP request, an SSDP search), every
// answer in size (SSDP answers read, device description, SOAP answer);
// SSDP answers and device descriptions that point at another host are
// refused, HTTP redirects are not followed, a lease of 0 or a port of 0
// is an error, an absurd lease is clamped, a different external port
// than asked for is used and reported, and an external address that is
// not a usable IPv4 address is ignored.
package portmap
