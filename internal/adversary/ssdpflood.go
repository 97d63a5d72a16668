package adversary

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// SSDPFlood is a LAN host that answers every SSDP search for a gateway
// with many answers of its own, each a sensible gateway answer naming
// itself: a client that counts every answer against one bound spends it
// before the real router has answered.
type SSDPFlood struct {
	// Addr is where searches to it go (they would be multicast).
	Addr netip.AddrPort
	// Flooded is closed once the first search got its Burst answers.
	Flooded chan struct{}

	pc   net.PacketConn
	done chan struct{}
}

// NewSSDPFlood starts one on ip (a loopback address) that answers the
// first search with burst answers (later ones it ignores); endless makes
// it go on answering that searcher until Close.
func NewSSDPFlood(ip string, burst int, endless bool) (*SSDPFlood, error) {
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	f := &SSDPFlood{Addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), Flooded: make(chan struct{}), pc: pc, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if !strings.HasPrefix(string(buf[:n]), "M-SEARCH") {
				continue
			}
			select {
			case <-f.Flooded:
				continue
			default:
			}
			reply := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"+
				"LOCATION: http://%s/rootDesc.xml\r\n\r\n", f.Addr))
			for range burst {
				if _, err := pc.WriteTo(reply, from); err != nil {
					return
				}
			}
			close(f.Flooded)
			for endless {
				if _, err := pc.WriteTo(reply, from); err != nil {
					return
				}
			}
		}
	}()
	return f, nil
}

// Close stops it.
func (f *SSDPFlood) Close() {
	f.pc.Close()
	<-f.done
}
