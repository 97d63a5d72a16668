package adversary

import (
	"context"
	"net"
	"net/netip"
	"sync"
)

// PortFarm is one host listening on many ports, each a peer that
// handshakes for the torrent and then gives nothing: what a DHT node
// naming every port of one host (its own, or a victim's) sends its
// victim to. Each connection is counted from its accept, so the farm sees
// the dials in flight as well as the peers. Its handshakes can be held
// back until Release, to keep the victim's dials in flight.
type PortFarm struct {
	Addrs []netip.AddrPort
	ih    [20]byte

	lns     []net.Listener
	wg      sync.WaitGroup
	release chan struct{}
	relOnce sync.Once
	done    chan struct{}

	mu     sync.Mutex
	conns  map[net.Conn]bool
	open   int
	peak   int
	dialed map[netip.AddrPort]bool
}

// ListenPorts listens on n ports of ip (on 127.0.0.0/8 or ::1), for
// info-hash ih. With hold, no connection gets its handshake before
// Release.
func ListenPorts(ip string, ih [20]byte, n int, hold bool) (*PortFarm, error) {
	f := &PortFarm{ih: ih, release: make(chan struct{}), done: make(chan struct{}),
		conns: make(map[net.Conn]bool), dialed: make(map[netip.AddrPort]bool)}
	if !hold {
		close(f.release)
	}
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			f.Close()
			return nil, err
		}
		ap := ln.Addr().(*net.TCPAddr).AddrPort()
		a := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		f.lns = append(f.lns, ln)
		f.Addrs = append(f.Addrs, a)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.accept(ln, a)
		}()
	}
	return f, nil
}

func (f *PortFarm) accept(ln net.Listener, a netip.AddrPort) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[nc] = true
		f.open++
		f.peak = max(f.peak, f.open)
		f.dialed[a] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() {
				nc.Close()
				f.mu.Lock()
				delete(f.conns, nc)
				f.open--
				f.mu.Unlock()
			}()
			select {
			case <-f.release:
			case <-f.done:
				return
			}
			p := &Peer{Conn: nc, ID: RandomID()}
			if p.handshake(context.Background(), f.ih, false) != nil {
				return
			}
			_ = p.Drain()
		}()
	}
}

// Release lets the held handshakes, and all later ones, go ahead.
func (f *PortFarm) Release() { f.relOnce.Do(func() { close(f.release) }) }

// Open is how many connections to the farm are open now, handshaken or
// not.
func (f *PortFarm) Open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open
}

// Peak is the most connections that were open at once.
func (f *PortFarm) Peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

// Dialed lists the ports that were connected to.
func (f *PortFarm) Dialed() []netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netip.AddrPort
	for a := range f.dialed {
		out = append(out, a)
	}
	return out
}

// Close stops listening, closes every connection and waits.
func (f *PortFarm) Close() {
	close(f.done)
	for _, ln := range f.lns {
		ln.Close()
	}
	f.mu.Lock()
	for nc := range f.conns {
		nc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
