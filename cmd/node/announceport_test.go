package main

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"node/cmd/node/portmap"
	"node/dht"
	"node/internal/adversary"
	"node/internal/testutil"
	"node/peer"
	"node/routing"
)

// portsDHT is a peer.DHT that finds nobody and records the ports
// announced.
type portsDHT struct {
	mu    sync.Mutex
	ports []int
}

func (d *portsDHT) Addr() netip.AddrPort  { return netip.MustParseAddrPort("127.0.207.211:6881") }
func (d *portsDHT) Addr6() netip.AddrPort { return netip.AddrPort{} }
func (d *portsDHT) GetPeersFrom(context.Context, routing.ID, chan<- dht.FoundPeer) (dht.LookupStats, error) {
	return dht.LookupStats{}, nil
}
func (d *portsDHT) AnnounceFrom(_ context.Context, _ routing.ID, port int, _ chan<- dht.FoundPeer) (dht.AnnounceStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ports = append(d.ports, port)
	return dht.AnnounceStats{}, nil
}
func (d *portsDHT) OfferNode(netip.AddrPort)         {}
func (d *portsDHT) ReportExternalIP(_, _ netip.Addr) {}

func (d *portsDHT) announced(port int) func() bool {
	return func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return slices.Contains(d.ports, port)
	}
}

// TestMappedPortAnnounced: a gateway that forwards another external port
// than ours has the torrent announce that one; one that forwards ours
// leaves the listener's. The gateway is a loopback fake.
func TestMappedPortAnnounced(t *testing.T) {
	for i, c := range []struct {
		name  string
		other bool
	}{{"other port", true}, {"same port", false}} {
		t.Run(c.name, func(t *testing.T) {
			g, err := adversary.NewGateway("127.0.207.21"+itoa(uint16(2+i)), func(g *adversary.Gateway) {
				if c.other {
					g.Port = func(p uint16) uint16 { return p + 1000 }
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			pc, err := net.ListenPacket("udp4", "127.0.207.211:0")
			if err != nil {
				t.Fatal(err)
			}
			node, err := dht.New(dht.Config{Conn: pc})
			if err != nil {
				t.Fatal(err)
			}
			defer node.Close()
			ln, err := net.Listen("tcp4", "127.0.207.211:0")
			if err != nil {
				t.Fatal(err)
			}
			local := uint16(ln.Addr().(*net.TCPAddr).Port)
			fake := &portsDHT{}
			tor, err := peer.New(peer.Config{InfoHash: [20]byte{1}, Dir: t.TempDir(), Listener: ln, DHT: fake})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- tor.Run(ctx) }()
			defer func() { cancel(); <-ran }()
			testutil.WaitFor(t, 10*time.Second, "the listener's port announced", fake.announced(int(local)))

			f := dhtFlags{portMapOffered: true, portMapBase: portmap.Config{NATPMPGateway: g.IP, NoUPnP: true}}
			pm := f.startPortMapping(netip.IPv4Unspecified(), local, node.Addr().Port(), node, announceMapped(tor, local), zap.NewNop())
			defer closePortMapping(pm, zap.NewNop())
			testutil.WaitFor(t, 10*time.Second, "the mapping", func() bool { return pm.Status().Mapped() })
			if !c.other {
				if st := pm.Status(); st.TCP != local {
					t.Fatalf("status %+v", st)
				}
				fake.mu.Lock()
				defer fake.mu.Unlock()
				for _, p := range fake.ports {
					if p != int(local) {
						t.Errorf("announced %d, not the listener's %d", p, local)
					}
				}
				return
			}
			testutil.WaitFor(t, 10*time.Second, "the external port announced", fake.announced(int(local)+1000))
		})
	}
}
