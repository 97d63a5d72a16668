package portmap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
)

// ssdpGroup is where SSDP searches go (UPnP Device Architecture 1.1).
var ssdpGroup = netip.MustParseAddrPort("239.255.255.250:1900")

// igdDevices are the search targets: IGD v2 and v1 gateways.
var igdDevices = []string{
	"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
}

// UPnP error codes we act on (IGD WANIPConnection specifications).
const (
	upnpConflict           = 718 // ConflictInMappingEntry
	upnpOnlyPermanentLease = 725 // OnlyPermanentLeasesSupported
)

// igdClient is what the three WAN connection services we use have in
// common: goupnp generates one type for each.
type igdClient interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16,
		intClient string, enabled bool, desc string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) error
	GetSpecificPortMappingEntryCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) (
		intPort uint16, intClient string, enabled bool, desc string, lease uint32, err error)
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	GetServiceClient() *goupnp.ServiceClient
}

// anyPortClient is IGD v2's WANIPConnection, which can pick a free
// external port itself when ours is taken.
type anyPortClient interface {
	AddAnyPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16,
		intClient string, enabled bool, desc string, lease uint32) (uint16, error)
}

type upnpBackend struct {
	gw    netip.Addr
	c     igdClient
	local netip.Addr // the LAN address mappings point at

	mu sync.Mutex
	// ours are the external ports, by protocol, that the gateway said it
	// mapped for us; any other that remove is asked to delete may be
	// another host's.
	ours map[string]uint16
}

// newUPnP finds the gateway (by SSDP unless cfg.RootURL is set), reads
// its description and picks its WAN connection service.
func newUPnP(ctx context.Context, cfg Config) (*upnpBackend, error) {
	root := cfg.RootURL
	if root == "" {
		// A host that is not the gateway of our route cannot forward
		// our ports, and one that claims to be a gateway is lying: when
		// the gateway is known, only its answer is taken.
		router, err := cfg.routes(cfg.LocalIP)
		if err != nil {
			router = netip.Addr{}
		}
		loc, err := ssdpSearch(ctx, cfg.ssdpAddrs, cfg.LocalIP, router)
		if err != nil {
			return nil, err
		}
		root = loc.String()
	}
	loc, err := url.Parse(root)
	if err != nil {
		return nil, err
	}
	gw, err := netip.ParseAddr(loc.Hostname())
	if err != nil {
		return nil, fmt.Errorf("gateway description at %q: host is not an IP address", root)
	}
	hc := boundedClient(maxDescriptionBytes)
	body, err := fetch(ctx, hc, loc)
	if err != nil {
		return nil, err
	}
	clients, err := parseDescription(body, loc)
	if err != nil {
		return nil, err
	}
	soapClient := boundedClient(maxSOAPBytes)
	for _, c := range clients {
		c.GetServiceClient().SOAPClient.HTTPClient = *soapClient
	}
	local := cfg.LocalIP
	if !local.IsValid() || local.IsUnspecified() {
		if local, err = localAddrTo(loc.Host); err != nil {
			return nil, err
		}
	}
	return &upnpBackend{gw: gw.Unmap(), c: clients[0], local: local, ours: map[string]uint16{}}, nil
}

func (b *upnpBackend) method() string      { return "UPnP" }
func (b *upnpBackend) gateway() netip.Addr { return b.gw }

// add returns ext with an error when the gateway may have mapped it all
// the same: any failure but a SOAP fault, which is the gateway saying
// no (and the port may be another host's, not ours to remove), or a
// context ended before the request was sent. A lost AddAnyPortMapping
// answer leaves a port we do not know.
func (b *upnpBackend) add(ctx context.Context, proto string, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	mayBeMapped := func(err error) uint16 {
		var f *soap.SOAPFaultError
		if errors.As(err, &f) {
			b.setOurs(proto, 0)
			return 0
		}
		return ext
	}
	p := strings.ToUpper(proto)
	desc := "node " + proto + " " + strconv.Itoa(int(internal))
	secs := uint32(lease / time.Second)
	err := b.c.AddPortMappingCtx(ctx, "", ext, p, internal, b.local.String(), true, desc, secs)
	if upnpCode(err) == upnpOnlyPermanentLease {
		// Renewed at our own lease's pace all the same, and removed on
		// exit.
		err = b.c.AddPortMappingCtx(ctx, "", ext, p, internal, b.local.String(), true, desc, 0)
	}
	if any, ok := b.c.(anyPortClient); ok && upnpCode(err) == upnpConflict {
		got, err := any.AddAnyPortMappingCtx(ctx, "", ext, p, internal, b.local.String(), true, desc, secs)
		if err != nil {
			return 0, 0, err
		}
		if got == 0 {
			return 0, 0, errors.New("gateway reserved external port 0")
		}
		b.setOurs(proto, got)
		return got, lease, nil
	}
	if err != nil {
		return mayBeMapped(err), 0, err
	}
	b.setOurs(proto, ext)
	return ext, lease, nil
}

func (b *upnpBackend) setOurs(proto string, ext uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ours[proto] = ext
}

// settle has nothing to wait for: an add in flight when Close is called
// runs to its end before Close removes (see mapAll), and the removal's own
// requests are waited for.
func (b *upnpBackend) settle(context.Context) {}

// remove deletes the mapping of ext. UPnP deletes by external port and
// protocol alone, so a port the gateway never said it mapped for us (an
// add whose answer was lost) is deleted only if the gateway's entry for
// it points at us: it may be another host's.
func (b *upnpBackend) remove(ctx context.Context, proto string, internal, ext uint16) error {
	p := strings.ToUpper(proto)
	b.mu.Lock()
	sure := b.ours[proto] == ext
	b.mu.Unlock()
	if !sure {
		intPort, client, _, _, _, err := b.c.GetSpecificPortMappingEntryCtx(ctx, "", ext, p)
		if err != nil {
			return fmt.Errorf("not removing %s port %d, which may not be ours: %w", proto, ext, err)
		}
		at, err := netip.ParseAddr(strings.TrimSpace(client))
		if err != nil || at.Unmap() != b.local || intPort != internal {
			return nil // another host's
		}
	}
	err := b.c.DeletePortMappingCtx(ctx, "", ext, p)
	if err == nil {
		b.setOurs(proto, 0)
	}
	return err
}

func (b *upnpBackend) externalIP(ctx context.Context) (netip.Addr, error) {
	s, err := b.c.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("gateway's external address %q: %w", truncate(s, 64), err)
	}
	return ip.Unmap(), nil
}

// upnpCode is the UPnP error code in a SOAP fault, or 0.
func upnpCode(err error) int {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return f.Detail.UPnPError.Errorcode
	}
	return 0
}

// ssdpSearch sends an SSDP M-SEARCH for gateways to each of `to` and
// returns the description URL of the first answer that is sensible and,
// when router (our route's gateway) is known, comes from router: other
// answers are read past, within ssdpWait. maxSSDPAnswers bounds the
// answers of the gateway (of any host when it is not known), so that
// another host's flood does not spend them before the router answers;
// maxSSDPReads bounds all.
func ssdpSearch(ctx context.Context, to []netip.AddrPort, local, router netip.Addr) (*url.URL, error) {
	laddr := &net.UDPAddr{}
	if local.IsValid() {
		laddr.IP = local.AsSlice()
	}
	conn, err := net.ListenUDP("udp4", laddr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(ssdpWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	for range 2 { // datagrams get lost; two searches are the custom
		for _, dst := range to {
			for _, st := range igdDevices {
				if _, err := conn.WriteToUDP(searchRequest(st), net.UDPAddrFromAddrPort(dst)); err != nil {
					return nil, err
				}
			}
		}
	}
	router = router.Unmap()
	buf := make([]byte, 2048)
	// last is the last answer's fault; notGW, kept apart, says that some
	// host other than the gateway answered, which the gateway's own
	// later answer (a 404, say) must not hide.
	var last, notGW error
	answers := 0
	for range maxSSDPReads {
		if answers == maxSSDPAnswers {
			return nil, fmt.Errorf("no usable answer in %d SSDP answers: %w", maxSSDPAnswers, last)
		}
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if last == nil {
				last = errors.New("no gateway answered the SSDP search")
			}
			if notGW != nil && notGW != last {
				return nil, errors.Join(last, notGW)
			}
			return nil, last
		}
		if router.IsValid() && from.Addr().Unmap() != router {
			notGW = fmt.Errorf("SSDP answer from %v, which is not the gateway %v", from.Addr(), router)
			last = notGW
			continue
		}
		answers++
		loc, err := parseSSDP(buf[:n], from.Addr())
		if err == nil {
			return loc, nil
		}
		last = err
	}
	return nil, fmt.Errorf("no usable answer in %d SSDP reads: %w", maxSSDPReads, last)
}

func searchRequest(st string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\n" +
		"HOST: 239.255.255.250:1900\r\n" +
		"MAN: \"ssdp:discover\"\r\n" +
		"MX: 1\r\n" +
		"ST: " + st + "\r\n\r\n")
}

// parseSSDP reads an SSDP search answer from from: an HTTP 200 response
// whose LOCATION is an http URL on from's own address (a host that names
// another makes us fetch from nobody but itself).
func parseSSDP(b []byte, from netip.Addr) (*url.URL, error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return nil, fmt.Errorf("SSDP answer: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("SSDP answer: status %d", resp.StatusCode)
	}
	st := resp.Header.Get("ST")
	found := false
	for _, d := range igdDevices {
		found = found || st == d
	}
	if !found {
		return nil, fmt.Errorf("SSDP answer for %q, not a gateway", truncate(st, 64))
	}
	loc, err := url.Parse(resp.Header.Get("LOCATION"))
	if err != nil {
		return nil, fmt.Errorf("SSDP answer: location: %w", err)
	}
	if loc.Scheme != "http" {
		return nil, fmt.Errorf("SSDP answer: location scheme %q", truncate(loc.Scheme, 16))
	}
	host, err := netip.ParseAddr(loc.Hostname())
	if err != nil || host.Unmap() != from.Unmap() {
		return nil, fmt.Errorf("SSDP answer from %v names another host %q", from, truncate(loc.Host, 64))
	}
	return loc, nil
}

// parseDescription reads a gateway's device description, fetched from
// loc, and returns its WAN connection services, the IGD v2 one first.
// Every control URL must be on loc's host: a description naming another
// host would have us send requests wherever it likes.
func parseDescription(b []byte, loc *url.URL) ([]igdClient, error) {
	root := new(goupnp.RootDevice)
	d := xml.NewDecoder(bytes.NewReader(b))
	d.DefaultSpace = goupnp.DeviceXMLNamespace
	if err := d.Decode(root); err != nil {
		return nil, fmt.Errorf("device description: %w", err)
	}
	base := loc
	if root.URLBaseStr != "" {
		u, err := url.Parse(root.URLBaseStr)
		if err != nil {
			return nil, fmt.Errorf("device description: URLBase: %w", err)
		}
		base = u
	}
	root.SetURLBase(base)
	var all []igdClient
	ip2, _ := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc)
	for _, c := range ip2 {
		all = append(all, c)
	}
	ip1, _ := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc)
	for _, c := range ip1 {
		all = append(all, c)
	}
	ppp, _ := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc)
	for _, c := range ppp {
		all = append(all, c)
	}
	var ok []igdClient
	for _, c := range all {
		u := c.GetServiceClient().Service.ControlURL.URL
		if (u.Scheme == "http") && u.Hostname() == loc.Hostname() {
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 {
		if len(all) > 0 {
			return nil, errors.New("device description: control URLs on another host")
		}
		return nil, errors.New("device description: no WANIPConnection or WANPPPConnection service")
	}
	return ok, nil
}

// boundedClient is an HTTP client for a LAN gateway: no proxy, no
// redirects, every request within callTimeout, bodies cut at max bytes.
func boundedClient(max int64) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: callTimeout}).DialContext,
		ResponseHeaderTimeout:  callTimeout,
		MaxResponseHeaderBytes: 8 << 10,
		DisableKeepAlives:      true,
	}
	return &http.Client{
		Transport:     limitTransport{tr, max},
		Timeout:       callTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("answer of %d bytes, more than %d", resp.ContentLength, t.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

// limitedBody ends the read of an answer longer than max with an error:
// cut short, it would not parse anyway, and the error says why.
type limitedBody struct {
	rc        io.ReadCloser
	left, max int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("answer longer than %d bytes", l.max)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }

func fetch(ctx context.Context, hc *http.Client, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("device description: HTTP %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// localAddrTo is the address this host uses to reach hostport.
func localAddrTo(hostport string) (netip.Addr, error) {
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "80")
	}
	c, err := net.Dial("udp4", hostport) // sends nothing
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
