package peer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/testutil"
	"node/peer/wire"
)

// TestSetAnnouncePort: a port set while the torrent runs (a gateway
// forwarding another external port) is announced to the DHT at once,
// not announceEvery later, named in the extended handshake of a new
// connection from a public address (not one from our LAN or machine,
// which reaches us where we listen) and reported to the tracker; 0 goes
// back to the listener's.
func TestSetAnnouncePort(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	tr := newMiniTracker(t)
	ln := listenTCP(t, "127.0.162.1:0")
	local := addrOf(ln.Addr())
	f := &fakeDHT{addr: netip.MustParseAddrPort("127.0.162.1:6881")}
	ctx, cancel := context.WithCancel(context.Background())
	public := netip.MustParseAddr("127.0.162.2") // stands for a peer on the Internet
	classify := func(a netip.Addr) addrClass {
		if a == public {
			return classPublic
		}
		return classOf(a)
	}
	tor, err := New(Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, DHT: f,
		Trackers: [][]string{{tr.URL + "/announce"}}, Dial: boundDial(local.Addr().String()), classify: classify})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- tor.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	announced := func(port int) func() bool {
		return f.locked(func() bool { return len(f.announces) > 0 && f.announces[len(f.announces)-1] == port })
	}
	testutil.WaitFor(t, 10*time.Second, "the DHT announce of the listener's port", announced(int(local.Port())))
	testutil.WaitFor(t, 10*time.Second, "the tracker's started", tr.sawEvent(local.String()+" started"))

	const mapped = 41001
	tor.SetAnnouncePort(mapped)
	testutil.WaitFor(t, 10*time.Second, "a DHT announce of the mapped port", announced(mapped))
	if p := handshakeP(t, public, local.String(), mi.Info.InfoHash); p != mapped {
		t.Errorf("extended handshake p=%d, want %d", p, mapped)
	}
	if p := handshakeP(t, netip.MustParseAddr("127.0.162.3"), local.String(), mi.Info.InfoHash); p != int(local.Port()) {
		t.Errorf("extended handshake to a loopback peer p=%d, want the listener's %d", p, local.Port())
	}

	tor.SetAnnouncePort(0)
	testutil.WaitFor(t, 10*time.Second, "the listener's port announced again", announced(int(local.Port())))
	if p := handshakeP(t, public, local.String(), mi.Info.InfoHash); p != int(local.Port()) {
		t.Errorf("extended handshake p=%d, want the listener's %d", p, local.Port())
	}

	// The tracker hears the port at its next announce: here the stopped
	// one on exit.
	tor.SetAnnouncePort(mapped)
	testutil.WaitFor(t, 10*time.Second, "a DHT announce of the mapped port", announced(mapped))
	cancel()
	<-ran
	ran <- nil
	stopped := netip.AddrPortFrom(local.Addr(), mapped).String() + " stopped"
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !slices.Contains(tr.events, stopped) {
		t.Errorf("tracker events %q, want %q", tr.events, stopped)
	}
}

var handshakesP atomic.Int32

// handshakeP connects from the IP from to addr as a peer would and
// returns the p of the extended handshake it is sent.
func handshakeP(t *testing.T, from netip.Addr, addr string, ih [20]byte) int {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	hs := wire.Handshake{Reserved: wire.DefaultReserved(), InfoHash: ih}
	// A peer ID of its own: the torrent refuses a second connection
	// from one, and the last call's may not have closed yet.
	copy(hs.PeerID[:], "-FAKE0-announceport0")
	hs.PeerID[19] = byte(handshakesP.Add(1))
	if _, err := c.Write(hs.Append(nil)); err != nil {
		t.Fatal(err)
	}
	var buf [wire.HandshakeLen]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		t.Fatal(err)
	}
	p := -1
	readMsgs(c, func(m wire.Message) bool {
		if m.Type != wire.Extended || m.ExtendedID != 0 {
			return true
		}
		h, err := wire.ParseExtendedHandshake(m.Payload)
		if err != nil {
			t.Errorf("extended handshake: %v", err)
			return false
		}
		p = h.P
		return false
	})
	if p < 0 {
		t.Fatal("no extended handshake " + strconv.Itoa(p))
	}
	return p
}

// A port set while a lookup is in flight is announced as soon as the
// lookup ends, even one that failed (whose backoff would delay it).
func TestAnnouncePortAfterFailedLookup(t *testing.T) {
	ln := listenTCP(t, "127.0.246.81:0")
	tor, err := New(Config{InfoHash: [20]byte{8}, Dir: t.TempDir(), Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := tor.announcePort()
	tor.looking = true
	tor.annPort = 41002 // set during the lookup
	tor.handle(lookupDoneEvent{port: old, err: errors.New("no nodes")}, now)
	if !tor.nextLook.Equal(now) || !tor.announced.IsZero() {
		t.Errorf("after a failed lookup, the new port waits until %v (announced %v)", tor.nextLook.Sub(now), tor.announced)
	}
}
