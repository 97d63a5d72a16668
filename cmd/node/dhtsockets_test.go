package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// answers reports whether a DHT node answers a ping at the loopback
// address of the given family (127.0.0.1 or ::1) on port.
func answers(t *testing.T, ip string, port uint16) bool {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("no %s: %v", ip, err)
	}
	cl, err := krpc.New(krpc.Config{Conn: pc, ReadOnly: true, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr(ip), port)
	_, err = cl.Query(context.Background(), to, krpc.MethodPing, &krpc.Args{ID: routing.ID{1}})
	return err == nil
}

// noPublic are the flags a test's node runs with: no bootstrap router, no
// port mapping, nothing that reaches a public host.
func noPublic(listen, listen6, defaultListen string) *dhtFlags {
	return &dhtFlags{listen: listen, listen6: listen6, defaultListen: defaultListen}
}

// --listen6 none turns IPv6 off and --listen none turns IPv4 off, also
// when the other family's socket is on all interfaces, where a "udp"
// socket takes both families and would serve the other from its table:
// node dht and node peers (startNode) and fetch and seed (startSwarm)
// bind each family's socket for that family alone.
//
// These bind wildcards on purpose: only a socket on all interfaces can
// take both families, which is what is tested. Port 0, no bootstrap, no
// port mapping: the nodes send nothing but the answers to our loopback
// pings.
func TestDHTSocketOneFamily(t *testing.T) {
	log := zap.NewNop()
	for _, tc := range []struct {
		name, listen, listen6, def string
		on, off                    string // loopback answered, and not, at the node's port
	}{
		{":0 --listen6 none", ":0", "none", ":0", "127.0.0.1", "::1"},
		{"0.0.0.0:0 --listen6 none", "0.0.0.0:0", "none", ":6881", "127.0.0.1", "::1"},
		{"--listen none, [::]", "none", "", ":0", "::1", "127.0.0.1"},
		{"--listen none --listen6 [::]:0", "none", "[::]:0", ":0", "::1", "127.0.0.1"},
	} {
		t.Run("dht "+tc.name, func(t *testing.T) {
			n, _, err := noPublic(tc.listen, tc.listen6, tc.def).startNode(log, nil)
			if err != nil {
				t.Skipf("cannot bind: %v", err)
			}
			defer n.Close()
			if n.Addr6().IsValid() {
				t.Fatalf("two sockets: %v and %v", n.Addr(), n.Addr6())
			}
			port := n.Addr().Port()
			if !answers(t, tc.on, port) {
				t.Fatalf("no answer on %s port %d", tc.on, port)
			}
			if answers(t, tc.off, port) {
				t.Fatalf("answered on %s port %d: that family is off", tc.off, port)
			}
		})
	}
	t.Run("fetch :0 --listen6 none", func(t *testing.T) {
		tg, err := loadTarget("magnet:?xt=urn:btih:" + strings.Repeat("ef", 20))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		sw, err := startSwarm(ctx, noPublic(":0", "none", ":0"), true, tg, t.TempDir(), log, nil)
		if err != nil {
			cancel()
			t.Skipf("cannot bind: %v", err)
		}
		defer func() {
			sw.node.Close()
			_ = sw.t.Run(ctx) // ctx is done by then: Run closes the listeners
		}()
		defer cancel()
		port := sw.node.Addr().Port()
		if sw.node.Addr6().IsValid() || !answers(t, "127.0.0.1", port) || answers(t, "::1", port) {
			t.Fatalf("DHT on %v and %v, port %d: want IPv4 alone", sw.node.Addr(), sw.node.Addr6(), port)
		}
	})
}

// --listen none keeps --listen's default port for the IPv6 socket (node
// dht's well-known 6881); an IPv6 --listen is the IPv6 socket, so a
// --listen6 beside it is a usage error.
func TestListenFlagsRules(t *testing.T) {
	for _, tc := range []struct{ def, want string }{{":6881", "[::]:6881"}, {":0", "[::]:0"}, {"", "[::]:0"}} {
		if got, err := noPublic("none", "", tc.def).ipv6Listen(); err != nil || got != tc.want {
			t.Errorf("--listen none, default %q: %q, %v; want %q", tc.def, got, err, tc.want)
		}
	}
	for _, l := range []string{"[::1]:0", "[::]:6881"} {
		if _, err := noPublic(l, "[::1]:7000", ":0").ipv6Listen(); err == nil {
			t.Errorf("--listen %s --listen6 [::1]:7000 accepted", l)
		}
		if got, err := noPublic(l, "none", ":0").ipv6Listen(); err != nil || got != "" {
			t.Errorf("--listen %s --listen6 none: %q, %v", l, got, err)
		}
	}
	if code, _, errOut := runCmd("peers", "--listen", "[::1]:0", "--listen6", "[::1]:0", "--bootstrap", "", strings.Repeat("ab", 20)); code != exitUsage {
		t.Errorf("peers --listen [::1]:0 --listen6 [::1]:0: exit %d, want %d: %s", code, exitUsage, errOut)
	}
	// fetch has no use for --listen none: it says so, not "missing port".
	code, _, errOut := runCmd("fetch", "--listen", "none", "--bootstrap", "", "--no-trackers", "magnet:?xt=urn:btih:"+strings.Repeat("ab", 20))
	if code != exitUsage || !strings.Contains(errOut, "dht and node peers only") {
		t.Errorf("fetch --listen none: exit %d, %q", code, errOut)
	}
}

// The node dht status line gives each family's nodes, good nodes and
// buckets, and the start line no "invalid AddrPort" for a node of one
// socket.
func TestDHTStatusBothFamilies(t *testing.T) {
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"dht", "--listen", "127.0.71.1:0", "--listen6", "none", "--bootstrap", "", "--status-interval", "50ms", "--no-port-mapping", "--state-dir="}, &lockedBuffer{}, &stderr)
	}()
	testutil.WaitFor(t, 10*time.Second, "a status line", func() bool { return strings.Contains(stderr.String(), "status") })
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-done:
		if c != exitOK {
			t.Fatalf("dht exited %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dht did not stop on SIGINT")
	}
	out := stderr.String()
	for _, w := range []string{`"good6"`, `"buckets6"`, `"addr6": "none"`} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %s:\n%s", w, out)
		}
	}
	if strings.Contains(out, "invalid AddrPort") {
		t.Errorf("log says invalid AddrPort:\n%s", out)
	}
}
