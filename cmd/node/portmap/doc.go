// Package portmap keeps node's listening ports open on a home router:
// it maps the TCP peer port and the UDP DHT port on the gateway with
// NAT-PMP (RFC 6886, github.com/jackpal/go-nat-pmp) or UPnP IGD v1/v2
// (WANIPConnection:1/2 and WANPPPConnection:1, github.com/huin/goupnp),
// renews each mapping at half its lease (Lease asked, the gateway's
// answer clamped), and removes them on Close within CloseTimeout.
//
// No mapping is left behind on purpose: a port whose add went unanswered
// (lost, cut off by Close, timed out) is removed all the same (an add
// never sent, its context ended first, is not counted), and Close
// first waits for a NAT-PMP add still being resent (the library takes no
// context and resends until its own timeout, callTimeout), so that no
// resend maps the port again after the removal. When rediscovery after a
// failure finds another gateway (or protocol), what the old one mapped
// is removed from it, within RemoveTimeout, before mapping on the new.
// Nor is another host's mapping removed: UPnP deletes by external port
// and protocol alone, so a port the gateway never confirmed as ours is
// deleted only if its GetSpecificPortMappingEntry names our address and
// port (if that call fails, it is left). NAT-PMP deletes by our
// internal port, which only our mappings have.
//
// It is a host concern, not a protocol one: cmd/node starts a Mapper
// beside the DHT node and the torrent, shows its Status on the progress
// line, tells the torrent the external TCP port when the gateway gave
// another than ours (Config.OnTCPPort: the DHT, the trackers and peers
// then hear that one), and passes the external address the gateway
// reports to the DHT's BEP 42 address vote, where the gateway is one
// voter among many and never decides alone. Only a public IPv4 address is passed on; a
// private one (a gateway behind another NAT) is shown but not voted.
//
// Discovery tries NAT-PMP first (one unicast exchange with the gateway
// of the default route on LocalIP's interface, or of the system's
// default route of the lowest metric when LocalIP is not set, read from
// /proc/net/route), then UPnP (an SSDP search to 239.255.255.250:1900,
// then the device description it names). Any host on the LAN can answer
// an SSDP search: when the gateway is known, only its answer is taken,
// the others read past for the rest of the search (as libtorrent's
// upnp_ignore_nonrouters) without counting against maxSSDPAnswers, so a
// host flooding answers cannot spend them before the router answers
// (maxSSDPReads bounds all reads); with no default route the first
// sensible answer is.
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
