package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/internal/testutil/swarmtest"
	"node/metadata"
	"node/peer"
	"node/peer/wire"
)

// runPeer runs an in-process torrent until the test ends.
func runPeer(t *testing.T, cfg peer.Config) *peer.Torrent { return swarmtest.Run(t, cfg) }

func listenV6(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	return ln
}

// magnetWithPeer is mi's magnet link with one x.pe.
func magnetWithPeer(mi *metadata.MetaInfo, p net.Addr) string {
	return fmt.Sprintf("magnet:?xt=urn:btih:%x&dn=%s&x.pe=%s", mi.Info.InfoHash[:], url.QueryEscape(mi.Info.Name), url.QueryEscape(p.String()))
}

func makeTorrent(t *testing.T, root string) *metadata.MetaInfo {
	t.Helper()
	writeContent(t, root, map[string]int{"a.bin": 200_001, "sub/b.bin": 70_000, "empty": 0})
	mi, err := metadata.Create(root, metadata.CreateOptions{PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

// node fetch on [::1] alone (TCP and UDP), no DHT node to ask, fetches
// the info dictionary and every byte from a seeder on [::1] its magnet
// link names.
func TestFetchIPv6Only(t *testing.T) {
	src := t.TempDir()
	mi := makeTorrent(t, filepath.Join(src, "v6"))
	ln := listenV6(t)
	seeder := runPeer(t, peer.Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true})
	select {
	case <-seeder.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the seeder did not verify its data")
	}
	dst := t.TempDir()
	code, _, errOut := runCmd("fetch", "--no-seed", "--listen", "[::1]:0", "--bootstrap", "", "--dir", dst,
		"--timeout", "30s", magnetWithPeer(mi, ln.Addr()))
	if code != exitOK {
		t.Fatalf("fetch: exit %d\n%s", code, errOut)
	}
	sameFiles(t, filepath.Join(src, "v6"), filepath.Join(dst, "v6"))
}

// node seed on [::1] alone, with no DHT node to ask, meets a leecher that
// never dials (it has a listener and the .torrent, nothing else): the
// seed dials the address its magnet link names, takes the info
// dictionary from it, verifies its data and serves every byte.
func TestSeedDialsIPv6Leecher(t *testing.T) {
	bin := nodeBinary(t)
	src, dst := t.TempDir(), t.TempDir()
	mi := makeTorrent(t, filepath.Join(src, "v6"))
	ln := listenV6(t)
	leecher := runPeer(t, peer.Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dst, Listener: ln})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "seed", "--no-port-mapping", "--state-dir=", "--listen", "[::1]:0", "--bootstrap", "", "--dir", src, magnetWithPeer(mi, ln.Addr()))
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == exitOK) {
			t.Errorf("seed: %v\n%s", err, stderr.String())
		}
	}()
	select {
	case <-leecher.Done():
	case <-time.After(30 * time.Second):
		s, _ := leecher.Stats(context.Background())
		t.Fatalf("the leecher is not complete after 30 s: %+v\nseed: %s", s, stderr.String())
	}
	sameFiles(t, filepath.Join(src, "v6"), filepath.Join(dst, "v6"))
}

// With --listen 127.0.0.5:0 --peer-listen [::1], an IPv4 peer sees us
// come from 127.0.0.5 (not the 127.0.0.1 the kernel would pick) and is
// told our IPv6 address; an IPv6 peer sees ::1 and is told 127.0.0.5.
func TestPeerListenAndSourceAddress(t *testing.T) {
	listenV6(t).Close()
	ih := [20]byte{0x5b, 1}
	var mu sync.Mutex
	type seen struct{ from, told netip.Addr }
	got := map[string]seen{}
	script := func(name string) func(*adversary.Peer) {
		return func(p *adversary.Peer) {
			_ = p.SendExtHandshake(wire.ExtendedHandshake{})
			_ = p.ReadUntil(10*time.Second, func(m wire.Message) bool {
				if m.Type != wire.Extended || m.ExtendedID != 0 {
					return false
				}
				h, err := wire.ParseExtendedHandshake(m.Payload)
				if err != nil {
					return true
				}
				s := seen{from: p.Conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()}
				if name == "v4" {
					s.told, _ = h.Addr6()
				} else {
					s.told, _ = h.Addr4()
				}
				mu.Lock()
				got[name] = s
				mu.Unlock()
				return true
			})
			_ = p.Drain()
		}
	}
	p4, err := adversary.ServePeers("127.0.0.1", ih, script("v4"))
	if err != nil {
		t.Fatal(err)
	}
	defer p4.Close()
	p6, err := adversary.ServePeers("::1", ih, script("v6"))
	if err != nil {
		t.Fatal(err)
	}
	defer p6.Close()
	link := fmt.Sprintf("magnet:?xt=urn:btih:%x&x.pe=%s&x.pe=%s", ih[:], url.QueryEscape(p4.Addr.String()), url.QueryEscape(p6.Addr.String()))
	done := make(chan struct{})
	var code int
	var errOut string
	go func() {
		defer close(done)
		code, _, errOut = runCmd("fetch", "--listen", "127.0.0.5:0", "--peer-listen", "[::1]", "--bootstrap", "",
			"--dir", t.TempDir(), "--timeout", "3s", link)
	}()
	testutil.WaitFor(t, 10*time.Second, "both peers to see our handshake", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	<-done
	if code != exitNoPeers {
		t.Fatalf("fetch: exit %d, want %d (no metadata)\n%s", code, exitNoPeers, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := (seen{netip.MustParseAddr("127.0.0.5"), netip.IPv6Loopback()}); got["v4"] != want {
		t.Errorf("IPv4 peer saw %+v, want %+v", got["v4"], want)
	}
	if want := (seen{netip.IPv6Loopback(), netip.MustParseAddr("127.0.0.5")}); got["v6"] != want {
		t.Errorf("IPv6 peer saw %+v, want %+v", got["v6"], want)
	}
}

func TestPeerListenValues(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"[::1]", true}, {"::1", true}, {"[::1]:0", true}, {"[::1]:6881", true}, {"127.0.0.9", true},
		{"[::1]:6882", false}, {"[::]", false}, {"0.0.0.0", false}, {"localhost", false}, {"", false},
	} {
		_, err := peerListenIP(tc.in, 6881)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok %v", tc.in, err, tc.ok)
		}
		var ue usageError
		if err != nil && !errors.As(err, &ue) {
			t.Errorf("%q: %v is not a usage error", tc.in, err)
		}
	}
	if !strings.Contains(fmt.Sprint(peerListenIP("[::1]:1", 2)), "--listen's (2)") {
		t.Error("a wrong port does not say which port")
	}
}

// The default --listen (all interfaces, port 0) takes peers of both
// families on one port: it is one dual-stack socket.
func TestDefaultListenTakesBothFamilies(t *testing.T) {
	listenV6(t).Close()
	ln, pc, _, err := listenBoth(":0", "udp4", false) // as startSwarm does beside an IPv6 DHT socket
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, ip := range []string{"127.0.0.1", "::1"} {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(port)), 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", ip, err)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := a.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != netip.MustParseAddr(ip) {
			t.Errorf("accepted from %v, dialled from %s", got, ip)
		}
		a.Close()
		c.Close()
	}
}

// A specific IPv6 DHT address gets a TCP listener on the peer port beside
// it, since the IPv6 DHT announces that address; a wildcard or an
// existing listener there needs none.
func TestPeerListen6(t *testing.T) {
	listenV6(t).Close()
	log := zap.NewNop()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	l := peerListen6("[::1]:0", ln, nil, log)
	if l == nil {
		t.Fatal("no listener beside [::1]")
	}
	defer l.Close()
	if got := l.Addr().(*net.TCPAddr).AddrPort(); got != netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)) {
		t.Errorf("listener on %v, want [::1]:%d", got, port)
	}
	if peerListen6("[::1]:0", ln, []net.Listener{l}, log) != nil {
		t.Error("a second listener on [::1]")
	}
	if peerListen6("[::]:0", ln, nil, log) != nil {
		t.Error("a listener beside a wildcard IPv6 socket")
	}
	all, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if peerListen6("[::1]:0", all, nil, log) != nil {
		t.Error("a listener beside a wildcard peer listener")
	}
}
