// Package dhttest supports tests and benchmarks that run anacrolix/dht
// (v2.23.0) servers next to ours on loopback: a peer store that works, a
// server configuration that reaches nothing beyond the addresses given, a
// network of such servers that know each other (StartNetwork), and a
// socket that delays what it sends by destination (DelayConn), for
// wide-area round trips on loopback.
package dhttest

import (
	"net"
	"net/netip"
	"sync"
	"time"

	adht "github.com/anacrolix/dht/v2"
	akrpc "github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	alog "github.com/anacrolix/log"
	"golang.org/x/time/rate"
)

// PeerStore is a correct peer store for anacrolix servers: the one shipped
// in v2.23.0 (peer_store.InMemory) keys peers by IP and decodes the key as
// IP+port, so every peer it returns is truncated. The zero value is ready.
type PeerStore struct {
	mu sync.Mutex
	m  map[peer_store.InfoHash]map[string]akrpc.NodeAddr
}

// AddPeer stores na under ih.
func (s *PeerStore) AddPeer(ih peer_store.InfoHash, na akrpc.NodeAddr) {
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

// GetPeers returns the peers stored under ih.
func (s *PeerStore) GetPeers(ih peer_store.InfoHash) []akrpc.NodeAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []akrpc.NodeAddr
	for _, na := range s.m[ih] {
		out = append(out, na)
	}
	return out
}

// StartingNodes turns a list of addresses into anacrolix's getter.
func StartingNodes(boot func() []netip.AddrPort) adht.StartingNodesGetter {
	return func() ([]adht.Addr, error) {
		var out []adht.Addr
		for _, ap := range boot() {
			out = append(out, adht.NewAddr(net.UDPAddrFromAddrPort(ap)))
		}
		return out, nil
	}
}

// Configure makes sc a loopback test server: it starts from boot only
// (the default is the public routers), skips BEP 42 checks (127.x IDs
// cannot be secure), sends without the package-global 25 packets/s limiter
// (shared by every server in the process, it also drops replies), stores
// announces in a working PeerStore, resends after 200 ms (loopback answers
// in microseconds; the 2 s default keeps queries to gone nodes alive past
// Close), and logs nothing.
func Configure(sc *adht.ServerConfig, boot func() []netip.AddrPort) {
	sc.StartingNodes = StartingNodes(boot)
	sc.NoSecurity = true
	sc.SendLimiter = rate.NewLimiter(rate.Inf, 0)
	sc.PeerStore = &PeerStore{}
	sc.QueryResendDelay = func() time.Duration { return 200 * time.Millisecond }
	sc.Logger = alog.Default.WithFilterLevel(alog.Disabled)
}
