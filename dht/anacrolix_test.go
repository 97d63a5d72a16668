package dht

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	adht "github.com/anacrolix/dht/v2"
	akrpc "github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	alog "github.com/anacrolix/log"
	"golang.org/x/time/rate"
)

// anacrolixPeerStore is a correct peer store for anacrolix servers: the one
// shipped in v2.23.0 (peer_store.InMemory) keys peers by IP and decodes the
// key as IP+port, so everything it returns is truncated.
type anacrolixPeerStore struct {
	mu sync.Mutex
	m  map[peer_store.InfoHash]map[string]akrpc.NodeAddr
}

func (s *anacrolixPeerStore) AddPeer(ih peer_store.InfoHash, na akrpc.NodeAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[peer_store.InfoHash]map[string]akrpc.NodeAddr)
	}
	if s.m[ih] == nil {
		s.m[ih] = make(map[string]akrpc.NodeAddr)
	}
	s.m[ih][na.String()] = na
}

func (s *anacrolixPeerStore) GetPeers(ih peer_store.InfoHash) []akrpc.NodeAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []akrpc.NodeAddr
	for _, na := range s.m[ih] {
		out = append(out, na)
	}
	return out
}

// startAnacrolix starts one anacrolix DHT server on 127.0.<subnet>.<host>,
// knowing only the loopback addresses boot returns. Every default that
// reaches out is replaced: starting nodes, the shared 25 packets/s send
// limiter, the peer store.
func startAnacrolix(t testing.TB, subnet, host int, boot func() []netip.AddrPort) *adht.Server {
	t.Helper()
	pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.%d.%d:0", subnet, host))
	if err != nil {
		t.Fatal(err)
	}
	cfg := adht.NewDefaultServerConfig()
	cfg.Conn = pc
	cfg.NoSecurity = true
	cfg.StartingNodes = func() ([]adht.Addr, error) {
		var out []adht.Addr
		for _, ap := range boot() {
			out = append(out, adht.NewAddr(net.UDPAddrFromAddrPort(ap)))
		}
		return out, nil
	}
	cfg.SendLimiter = rate.NewLimiter(rate.Inf, 0)
	cfg.PeerStore = &anacrolixPeerStore{}
	cfg.Logger = alog.Default.WithFilterLevel(alog.Disabled)
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
