package peer

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"node/dht"
	"node/internal/testutil"
	"node/routing"
)

// fakeDHT is a DHT that finds the peers it is given, named by one made-up
// node, and records what the torrent asks of it.
type fakeDHT struct {
	addr  netip.AddrPort   // what Addr returns: the port a BEP 5 port message carries
	addr6 netip.AddrPort   // what Addr6 returns: the port IPv6 peers are told, if valid
	from  netip.AddrPort   // the node said to have named each peer
	peers []netip.AddrPort // what every lookup finds

	mu        sync.Mutex
	lookups   []routing.ID
	announces []int // ports
	offered   []netip.AddrPort
	votes     [][2]netip.Addr // voter, ip
}

var _ DHT = (*fakeDHT)(nil)

func (f *fakeDHT) Addr() netip.AddrPort { return f.addr }

func (f *fakeDHT) Addr6() netip.AddrPort { return f.addr6 }

func (f *fakeDHT) GetPeersFrom(ctx context.Context, ih routing.ID, peers chan<- dht.FoundPeer) (dht.LookupStats, error) {
	f.mu.Lock()
	f.lookups = append(f.lookups, ih)
	f.mu.Unlock()
	for _, p := range f.peers {
		select {
		case peers <- dht.FoundPeer{Addr: p, From: f.from}:
		case <-ctx.Done():
			return dht.LookupStats{}, ctx.Err()
		}
	}
	return dht.LookupStats{Peers: len(f.peers)}, nil
}

func (f *fakeDHT) AnnounceFrom(ctx context.Context, ih routing.ID, port int, peers chan<- dht.FoundPeer) (dht.AnnounceStats, error) {
	if _, err := f.GetPeersFrom(ctx, ih, peers); err != nil {
		return dht.AnnounceStats{}, err
	}
	f.mu.Lock()
	f.announces = append(f.announces, port)
	f.mu.Unlock()
	return dht.AnnounceStats{}, nil
}

func (f *fakeDHT) OfferNode(addr netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offered = append(f.offered, addr)
}

func (f *fakeDHT) ReportExternalIP(voter, ip netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.votes = append(f.votes, [2]netip.Addr{voter, ip})
}

// locked runs fn with f's records held still.
func (f *fakeDHT) locked(fn func() bool) func() bool {
	return func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return fn()
	}
}

// A swarm whose DHT is a fake: the leecher starts from the info-hash
// alone, learns the seeder from its DHT's lookup, fetches the metadata
// and every byte over real sockets; each side announces its listening
// port, and what the peers say for the DHT (a BEP 5 port, a BEP 10
// yourip) reaches it.
func TestSwarmWithFakeDHT(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ih := routing.ID(mi.Info.InfoHash)
	seedLn, leechLn := listenTCP(t, "127.0.161.1:0"), listenTCP(t, "127.0.161.2:0")
	seedAddr, leechAddr := addrOf(seedLn.Addr()), addrOf(leechLn.Addr())

	seedDHT := &fakeDHT{addr: netip.MustParseAddrPort("127.0.161.1:6881")}
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: seedLn, DHT: seedDHT})
	leechDHT := &fakeDHT{
		addr:  netip.MustParseAddrPort("127.0.161.2:6881"),
		from:  netip.MustParseAddrPort("127.0.161.9:6881"),
		peers: []netip.AddrPort{seedAddr},
	}
	// Dialing from its own address, so that the seeder sees the leecher
	// where it listens and says so in yourip.
	leech, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: leechLn, DHT: leechDHT,
		Dial: boundDial(leechAddr.Addr().String())})
	waitDone(t, leech, 30*time.Second)
	sameTree(t, src, dst, "content")

	for _, c := range []struct {
		name string
		f    *fakeDHT
		port int
	}{{"seeder", seedDHT, int(seedAddr.Port())}, {"leecher", leechDHT, int(leechAddr.Port())}} {
		testutil.WaitFor(t, 10*time.Second, c.name+" announced its port", c.f.locked(func() bool {
			return slices.Contains(c.f.announces, c.port)
		}))
		c.f.mu.Lock()
		for _, got := range c.f.lookups {
			if got != ih {
				t.Errorf("%s looked up %x, want %x", c.name, got, ih)
			}
		}
		c.f.mu.Unlock()
	}
	// The seeder's port message names its DHT node at its own IP.
	seedNode := netip.AddrPortFrom(seedAddr.Addr(), seedDHT.addr.Port())
	testutil.WaitFor(t, 10*time.Second, "leecher offered the seeder's DHT node", leechDHT.locked(func() bool {
		return slices.Contains(leechDHT.offered, seedNode)
	}))
	// Each side's extended handshake tells the other its address.
	testutil.WaitFor(t, 10*time.Second, "leecher heard its IP from the seeder", leechDHT.locked(func() bool {
		return slices.Contains(leechDHT.votes, [2]netip.Addr{seedAddr.Addr(), leechAddr.Addr()})
	}))
	leechDHT.mu.Lock()
	defer leechDHT.mu.Unlock()
	for _, a := range leechDHT.offered {
		if a != seedNode {
			t.Errorf("leecher offered %v; only the seeder, %v, sent a port message", a, seedNode)
		}
	}
}

// A seeder whose DHT runs an IPv6 socket beside its IPv4 one, on another
// port, tells an IPv6 peer the IPv6 socket's port in its BEP 5 port
// message and an IPv4 peer the IPv4 one's: each peer reaches our node
// over the family it sees us on.
func TestPortMessagePerFamily(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	seedLn4, seedLn6 := listenTCP(t, "127.0.162.1:0"), listen6(t)
	seedDHT := &fakeDHT{addr: netip.MustParseAddrPort("127.0.162.1:6881"), addr6: netip.MustParseAddrPort("[::1]:6999")}
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: seedLn4, Listeners: []net.Listener{seedLn6}, DHT: seedDHT})
	for _, c := range []struct {
		name string
		ln   net.Listener
		seed netip.AddrPort
		want netip.AddrPort
	}{
		{"IPv4", listenTCP(t, "127.0.162.2:0"), addrOf(seedLn4.Addr()), netip.MustParseAddrPort("127.0.162.1:6881")},
		{"IPv6", listen6(t), addrOf(seedLn6.Addr()), netip.MustParseAddrPort("[::1]:6999")},
	} {
		leechDHT := &fakeDHT{addr: netip.MustParseAddrPort("127.0.162.2:6881"), peers: []netip.AddrPort{c.seed}}
		runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: t.TempDir(), Listener: c.ln, DHT: leechDHT})
		testutil.WaitFor(t, 10*time.Second, c.name+" leecher offered the seeder's DHT node", leechDHT.locked(func() bool {
			return len(leechDHT.offered) > 0
		}))
		leechDHT.mu.Lock()
		got := slices.Clone(leechDHT.offered)
		leechDHT.mu.Unlock()
		if !slices.Equal(got, []netip.AddrPort{c.want}) {
			t.Errorf("%s leecher was told %v, want %v", c.name, got, c.want)
		}
	}
}
