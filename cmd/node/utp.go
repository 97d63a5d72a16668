package main

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"node/peer"
	"node/peer/utp"
)

// registerUTP adds --no-utp, for the subcommands that run peers.
func (f *dhtFlags) registerUTP(fs *pflag.FlagSet) {
	usage := "peers over TCP alone: no uTP (BEP 29). By default uTP shares the DHT's UDP socket (on --listen's port, as TCP), " +
		"dials try it first and fall back to TCP, and incoming peers are taken on both"
	if !utp.Available {
		usage += ". This binary was built without cgo, so it has no uTP whatever this flag says"
	}
	fs.BoolVar(&f.noUTP, "no-utp", false, usage)
	markGroup(fs, groupExpert, "no-utp")
}

// useUTP reports whether the swarm runs uTP, and warns once when the
// user did not turn it off but the binary cannot.
func (f *dhtFlags) useUTP(log *zap.Logger) bool {
	if f.noUTP {
		return false
	}
	if !utp.Available {
		log.Warn("built without cgo: no uTP, peers over TCP alone")
		return false
	}
	return true
}

// listenPacket binds a UDP socket for the DHT: a uTP socket whose
// non-uTP datagrams are the DHT's when withUTP, else a plain one.
func listenPacket(network, addr string, withUTP bool) (net.PacketConn, *utp.Socket, error) {
	if !withUTP {
		pc, err := net.ListenPacket(network, addr)
		return pc, nil, err
	}
	s, err := utp.Listen(network, addr)
	if err != nil {
		return nil, nil, err
	}
	return s.PacketConn(), s, nil
}

// utpSockets are the uTP sockets of a swarm, at most one per family.
type utpSockets []*utp.Socket

// listeners are the sockets' listener views, for peer.Config.Listeners.
func (us utpSockets) listeners() []net.Listener {
	var out []net.Listener
	for _, s := range us {
		out = append(out, s.Listener())
	}
	return out
}

// dial is peer.Config.UTPDial: from the socket of a's family.
func (us utpSockets) dial(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
	v4 := a.Addr().Unmap().Is4()
	for _, s := range us {
		if s.Addr().Addr().Unmap().Is4() == v4 {
			return s.Dial(ctx, a)
		}
	}
	return nil, errors.New("no uTP socket of this family")
}

// configure gives the torrent uTP, if there is a socket.
func (us utpSockets) configure(c *peer.Config) {
	if len(us) == 0 {
		return
	}
	c.Listeners = append(c.Listeners, us.listeners()...)
	c.UTPDial = us.dial
}
