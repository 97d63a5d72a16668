package tracker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/adversary"
)

// Loopback addresses that the tests' classifier places elsewhere: there
// is no public or LAN address a test may use.
var (
	publicIP  = netip.MustParseAddr("127.0.0.2")
	privateIP = netip.MustParseAddr("127.0.0.3")
)

// ssrfClient is a test client whose classifier sees publicIP as public
// and privateIP as private, and whose resolver knows names.
func ssrfClient(names map[string][]netip.Addr) *Client {
	c := testClient()
	c.classify = func(a netip.Addr) locality {
		switch a {
		case publicIP:
			return localPublic
		case privateIP:
			return localPrivate
		}
		return localityOf(a)
	}
	c.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		if ips, ok := names[host]; ok {
			return ips, nil
		}
		return nil, fmt.Errorf("%s: no such host", host)
	}
	return c
}

// target is a web server on ip that counts the requests that reach it:
// a router's admin page, or a tracker answering one peer.
type target struct {
	hits atomic.Int64
	ln   net.Listener
	srv  *http.Server
	wg   sync.WaitGroup
}

func newTarget(t *testing.T, ip netip.Addr, answer string) *target {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Skipf("listen on %s: %v", ip, err)
	}
	g := &target{ln: ln}
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.hits.Add(1)
		fmt.Fprint(w, answer)
	})}
	g.wg.Add(1)
	go func() { defer g.wg.Done(); g.srv.Serve(ln) }()
	t.Cleanup(func() { g.srv.Close(); g.wg.Wait() })
	return g
}

func (g *target) port() uint16 { return g.ln.Addr().(*net.TCPAddr).AddrPort().Port() }

const onePeer = "d8:intervali1800e5:peers6:\x7f\x00\x00\x02\x1a\xe1e"

func redirector(t *testing.T, ip netip.Addr, to string) *adversary.RedirectTracker {
	rt, err := adversary.NewRedirectTracker(ip.String(), to)
	if err != nil {
		t.Skipf("listen on %s: %v", ip, err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// A public tracker may not redirect us to a private or loopback address,
// by address or by a name that resolves there (DNS rebinding): the
// request never reaches it, and the refusal is counted.
func TestRedirectToLocalRefused(t *testing.T) {
	router := newTarget(t, netip.MustParseAddr("127.0.0.1"), onePeer)
	lan := newTarget(t, privateIP, onePeer)
	names := map[string][]netip.Addr{"rebind.test": {netip.MustParseAddr("127.0.0.1")}}
	for _, to := range []string{
		fmt.Sprintf("http://127.0.0.1:%d/admin", router.port()),
		fmt.Sprintf("http://127.0.0.1:%d/announce", router.port()),
		fmt.Sprintf("http://%s:%d/announce", privateIP, lan.port()),
		fmt.Sprintf("http://rebind.test:%d/announce", router.port()),
	} {
		rt := redirector(t, publicIP, to)
		c := ssrfClient(names)
		_, err := c.Announce(ctxT(t, 5*time.Second), rt.URL, Request{InfoHash: ih})
		if !errors.Is(err, ErrLocal) {
			t.Errorf("redirect to %s: %v, want ErrLocal", to, err)
		}
		if rt.Requests.Load() != 1 {
			t.Errorf("redirect to %s: the tracker got %d requests", to, rt.Requests.Load())
		}
		if s := c.Stats(); s.Local != 1 {
			t.Errorf("redirect to %s: not counted: %+v", to, s)
		}
	}
	if router.hits.Load() != 0 || lan.hits.Load() != 0 {
		t.Errorf("requests reached the local servers: %d, %d", router.hits.Load(), lan.hits.Load())
	}
}

// A tracker on a loopback or private address, or a name resolving to
// one, is asked only at /announce; a public one anywhere.
func TestLocalTrackerPath(t *testing.T) {
	lo := newTarget(t, netip.MustParseAddr("127.0.0.1"), onePeer)
	lan := newTarget(t, privateIP, onePeer)
	pub := newTarget(t, publicIP, onePeer)
	udp := newFakeUDP(t, "127.0.0.1", seed1)
	names := map[string][]netip.Addr{"localhost.test": {netip.MustParseAddr("127.0.0.1")}}
	for u, ok := range map[string]bool{
		fmt.Sprintf("http://127.0.0.1:%d/announce", lo.port()):           true,
		fmt.Sprintf("http://127.0.0.1:%d/announce?passkey=1", lo.port()): true,
		fmt.Sprintf("http://127.0.0.1:%d/admin", lo.port()):              false,
		fmt.Sprintf("http://127.0.0.1:%d/announce.php", lo.port()):       false,
		fmt.Sprintf("http://localhost.test:%d/announce", lo.port()):      true,
		fmt.Sprintf("http://localhost.test:%d/cgi-bin/x", lo.port()):     false,
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/x", lo.port()):         false,
		fmt.Sprintf("http://%s:%d/announce", privateIP, lan.port()):      true,
		fmt.Sprintf("http://%s:%d/setup.cgi", privateIP, lan.port()):     false,
		fmt.Sprintf("http://%s:%d/any/path", publicIP, pub.port()):       true,
		udp.url():                             true,
		"udp://" + udp.addr().String():        false,
		"udp://" + udp.addr().String() + "/x": false,
	} {
		c := ssrfClient(names)
		_, err := c.Announce(ctxT(t, 5*time.Second), u, Request{InfoHash: ih})
		if ok && err != nil {
			t.Errorf("%s: %v", u, err)
		}
		if !ok && !errors.Is(err, ErrLocal) {
			t.Errorf("%s: %v, want ErrLocal", u, err)
		}
	}
	if n := lo.hits.Load(); n != 3 {
		t.Errorf("%d requests reached the loopback server, want 3 (the /announce ones)", n)
	}
	if _, packets, _ := udp.stats(); packets != 2 {
		t.Errorf("%d packets reached the UDP tracker, want 2 (connect, announce)", packets)
	}
}

// A redirect to a less local address is followed; the answer's source is
// the least local address the request went through, whatever the later
// hops are, so a redirect never makes the peers of an answer more
// trusted.
func TestRedirectFromIsLeastLocal(t *testing.T) {
	final := newTarget(t, privateIP, onePeer)
	mid := redirector(t, publicIP, fmt.Sprintf("http://%s:%d/announce", privateIP, final.port()))
	first := redirector(t, netip.MustParseAddr("127.0.0.1"), mid.URL)
	c := ssrfClient(nil)
	r, err := c.Announce(ctxT(t, 5*time.Second), first.URL, Request{InfoHash: ih})
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort(mid.Addr()); r.From != want {
		t.Errorf("from %v, want %v (the public hop)", r.From, want)
	}
	if !slices.Equal(r.Peers, []netip.AddrPort{seed1}) || final.hits.Load() != 1 {
		t.Errorf("peers %v, %d hits", r.Peers, final.hits.Load())
	}
}

// A tracker on a local address may redirect only to /announce (or
// /scrape) on another local address: a local tracker, or a link naming
// one, must not lead us to another service of this host or our LAN.
func TestLocalRedirectPath(t *testing.T) {
	other := newTarget(t, netip.MustParseAddr("127.0.0.1"), onePeer)
	lan := newTarget(t, privateIP, onePeer)
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		from netip.Addr
		to   string
		ok   bool
	}{
		{lo, fmt.Sprintf("http://127.0.0.1:%d/admin", other.port()), false},
		{lo, fmt.Sprintf("http://%s:%d/setup.cgi", privateIP, lan.port()), false},
		{privateIP, fmt.Sprintf("http://%s:%d/setup.cgi", privateIP, lan.port()), false},
		{lo, fmt.Sprintf("http://127.0.0.1:%d/announce", other.port()), true},
		{lo, fmt.Sprintf("http://%s:%d/announce", privateIP, lan.port()), true},
		{privateIP, fmt.Sprintf("http://%s:%d/announce", privateIP, lan.port()), true},
	} {
		rt := redirector(t, tc.from, tc.to)
		c := ssrfClient(nil)
		_, err := c.Announce(ctxT(t, 5*time.Second), rt.URL, Request{InfoHash: ih})
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrLocal) {
			t.Errorf("redirect from %s to %s: %v", tc.from, tc.to, err)
		}
	}
	if n := other.hits.Load(); n != 1 {
		t.Errorf("%d requests reached the other loopback server, want 1 (the /announce one from loopback)", n)
	}
	if n := lan.hits.Load(); n != 2 {
		t.Errorf("%d requests reached the LAN server, want 2 (the /announce ones)", n)
	}
}

// A UDP tracker on a local address is not asked at a system port or at
// one of the LAN's own UDP services: the /announce rule means nothing
// there, as no path goes over UDP. A public one is asked anywhere.
func TestLocalUDPTrackerPorts(t *testing.T) {
	c := ssrfClient(nil)
	for _, tc := range []struct {
		a  string
		ok bool
	}{
		{"127.0.0.1:53", false},
		{"127.0.0.3:161", false}, // privateIP
		{"127.0.0.1:1900", false},
		{"127.0.0.3:5351", false},
		{"127.0.0.1:5353", false},
		{"127.0.0.1:6969", true},
		{"127.0.0.2:53", true}, // publicIP
	} {
		err := c.mayAskUDP(netip.MustParseAddrPort(tc.a))
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrLocal) {
			t.Errorf("%s: %v", tc.a, err)
		}
	}
	// And through Announce: refused before a packet is sent.
	_, err := c.Announce(ctxT(t, 5*time.Second), "udp://127.0.0.1:53/announce", Request{InfoHash: ih})
	if !errors.Is(err, ErrLocal) {
		t.Errorf("udp://127.0.0.1:53/announce: %v, want ErrLocal", err)
	}
}

// resolveHost keeps at most MaxAddrsPerTracker addresses of a name, the
// families taking turns, the resolver's first family first.
func TestMaxAddrsPerTracker(t *testing.T) {
	var ips []netip.Addr
	for i := range 3 * MaxAddrsPerTracker {
		ips = append(ips, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	ips = append(ips, netip.MustParseAddr("::1"), netip.MustParseAddr("::1"), netip.MustParseAddr("fe80::1%lo"))
	c := ssrfClient(map[string][]netip.Addr{"many.test": ips})
	got, err := c.resolveHost(context.Background(), "many.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{ips[0], netip.MustParseAddr("::1")}
	want = append(want, ips[1:MaxAddrsPerTracker-1]...)
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
