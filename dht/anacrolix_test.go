package dht

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	adht "github.com/anacrolix/dht/v2"

	"node/internal/dhttest"
)

// startAnacrolix starts one anacrolix DHT server on 127.0.<subnet>.<host>,
// knowing only the loopback addresses boot returns. Every default that
// reaches out is replaced (see dhttest.Configure).
func startAnacrolix(t testing.TB, subnet, host int, boot func() []netip.AddrPort) *adht.Server {
	t.Helper()
	pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.%d.%d:0", subnet, host))
	if err != nil {
		t.Fatal(err)
	}
	cfg := adht.NewDefaultServerConfig()
	cfg.Conn = pc
	dhttest.Configure(cfg, boot)
	s, err := adht.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// startAnacrolixNetwork starts count servers on 127.0.<subnet>.1.., each
// knowing the loopback addresses boot returns and the servers before it.
func startAnacrolixNetwork(t testing.TB, subnet, count int, boot func() []netip.AddrPort) []*adht.Server {
	t.Helper()
	var (
		mu      sync.Mutex
		servers []*adht.Server
	)
	known := func() []netip.AddrPort {
		out := boot()
		mu.Lock()
		defer mu.Unlock()
		for _, s := range servers {
			out = append(out, anacrolixAddr(s))
		}
		return out
	}
	for i := 0; i < count; i++ {
		s := startAnacrolix(t, subnet, i+1, known)
		mu.Lock()
		servers = append(servers, s)
		mu.Unlock()
	}
	return servers
}

func anacrolixAddr(s *adht.Server) netip.AddrPort {
	return s.Addr().(*net.UDPAddr).AddrPort()
}
