package tracker

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// remoteRecorder is an HTTP tracker on ip that records the address each
// request came from and answers one peer.
type remoteRecorder struct {
	mu   sync.Mutex
	from []netip.Addr
	url  string
}

func newRemoteRecorder(t *testing.T, ip string) *remoteRecorder {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("no TCP on %s: %v", ip, err)
	}
	rr := &remoteRecorder{url: "http://" + ln.Addr().String() + "/announce"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		rr.mu.Lock()
		rr.from = append(rr.from, ap.Addr())
		rr.mu.Unlock()
		fmt.Fprint(w, onePeer)
	})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return rr
}

// Requests leave from our address of the tracker's family: with a
// specific IPv4 and IPv6 address to listen on, an IPv6 tracker is asked
// from the IPv6 one, not refused for want of an IPv4 route.
func TestLocalAddressPerFamily(t *testing.T) {
	v4, v6 := newRemoteRecorder(t, "127.0.0.1"), newRemoteRecorder(t, "::1")
	u4, u6 := newFakeUDP(t, "127.0.0.1", seed1), newFakeUDP(t, "::1", seed6)
	c := NewClient("node-test", netip.MustParseAddr("127.0.0.5"), netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.9"))
	mapped := strings.Replace(v4.url, "127.0.0.1", "[::ffff:127.0.0.1]", 1)
	for _, u := range []string{v4.url, v6.url, u4.url(), u6.url(), mapped} {
		r, err := c.Announce(ctxT(t, 5*time.Second), u, Request{InfoHash: ih})
		if err != nil || len(r.Peers) != 1 {
			t.Errorf("%s: %v %v", u, r.Peers, err)
		}
		if r.From.Addr().Is4In6() {
			t.Errorf("%s: from %v, not unmapped", u, r.From)
		}
	}
	if !slices.Equal(v4.from, []netip.Addr{netip.MustParseAddr("127.0.0.5"), netip.MustParseAddr("127.0.0.5")}) || !slices.Equal(v6.from, []netip.Addr{netip.MustParseAddr("::1")}) {
		t.Errorf("requests came from %v and %v", v4.from, v6.from)
	}
}

// A tracker with an address in each family is reached over the other
// when the first does not answer: at once when it refuses (ICMP), at the
// next attempt when it is silent.
func TestUDPOtherFamily(t *testing.T) {
	good := newFakeUDP(t, "127.0.0.1", seed1)
	port := good.addr().Port()
	closed, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("::1"), port)))
	if err != nil {
		t.Skipf("no UDP port %d on ::1: %v", port, err)
	}
	closed.Close()
	c := ssrfClient(map[string][]netip.Addr{"dual.test": {netip.MustParseAddr("::1"), netip.MustParseAddr("::2"), netip.MustParseAddr("127.0.0.1")}})
	u := fmt.Sprintf("udp://dual.test:%d/announce", port)
	r, err := c.Announce(ctxT(t, 5*time.Second), u, Request{InfoHash: ih})
	if err != nil || r.From != good.addr() || !slices.Equal(r.Peers, []netip.AddrPort{seed1}) {
		t.Fatalf("refused over IPv6: %+v %v, want the answer over IPv4", r, err)
	}

	// Silent over IPv6: the first attempt waits there, the second
	// goes to IPv4.
	silent := newFakeUDP(t, "::1")
	silent.setDrop(func(int) bool { return true })
	good = newFakeUDPAt(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), silent.addr().Port()), seed2)
	c.lookup = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil
	}
	u = fmt.Sprintf("udp://dual.test:%d/announce", silent.addr().Port())
	r, err = c.Announce(ctxT(t, 5*time.Second), u, Request{InfoHash: ih})
	if err != nil || r.From != good.addr() || !slices.Equal(r.Peers, []netip.AddrPort{seed2}) {
		t.Fatalf("silent over IPv6: %+v %v, want the answer over IPv4", r, err)
	}
	if _, packets, _ := silent.stats(); packets != 1 {
		t.Errorf("%d packets over IPv6, want 1 (the first attempt)", packets)
	}
}

// A stopped announce asks for no peers over UDP too.
func TestUDPStoppedNumWant(t *testing.T) {
	for ev, want := range map[Event]uint32{Started: DefaultNumWant, Stopped: 0, None: DefaultNumWant} {
		p := appendAnnounce(nil, 1, 2, Request{Event: ev})
		if got := binary.BigEndian.Uint32(p[92:]); got != want {
			t.Errorf("%v: numwant %d, want %d", ev, got, want)
		}
	}
}
