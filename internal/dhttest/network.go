package dhttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	adht "github.com/anacrolix/dht/v2"
)

// Network is a loopback network of anacrolix servers, every one on its
// own DelayConn, that know each other.
type Network struct {
	Servers []*adht.Server
	Conns   []*DelayConn
	Addrs   []netip.AddrPort
	// Boot are the servers everyone joined through, as the public
	// routers are on the live DHT.
	Boot []netip.AddrPort
}

// NetworkWorkers bounds the bootstraps and pings a Network's setup runs at
// once.
const NetworkWorkers = 32

// StartNetwork starts count servers (Configure'd), the i-th on ip(i) (from
// 0) at an ephemeral port, and joins them: the first three bootstrap in
// turn, then everyone through them, three rounds in all, each followed by
// every server pinging its table, as its TableMaintainer would every
// minute, so that the early joiners learn of the later ones. Sends are not
// delayed until the caller sets a delay: a network of hundreds forms in
// seconds rather than minutes, and the tables come out the same. On error
// it closes what it started.
func StartNetwork(ctx context.Context, count int, ip func(i int) netip.Addr) (*Network, error) {
	if count < 4 {
		return nil, fmt.Errorf("dhttest: a network of %d servers: want at least 4", count)
	}
	nw := &Network{}
	for i := range count {
		pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(ip(i), 0).String())
		if err != nil {
			nw.Close()
			return nil, err
		}
		dc := NewDelayConn(pc)
		nw.Conns = append(nw.Conns, dc)
		nw.Addrs = append(nw.Addrs, pc.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	nw.Boot = nw.Addrs[:3]
	for _, dc := range nw.Conns {
		cfg := adht.NewDefaultServerConfig()
		cfg.Conn = dc
		Configure(cfg, func() []netip.AddrPort { return nw.Boot })
		s, err := adht.NewServer(cfg)
		if err != nil {
			nw.Close()
			return nil, err
		}
		nw.Servers = append(nw.Servers, s)
	}
	for i := range 3 {
		if _, err := nw.Servers[i].BootstrapContext(ctx); err != nil {
			nw.Close()
			return nil, fmt.Errorf("bootstrap node %d: %w", i, err)
		}
	}
	for round := range 3 {
		from := 3
		if round > 0 {
			from = 0
		}
		fails, err := Pool(from, count, NetworkWorkers, func(i int) error {
			_, err := nw.Servers[i].BootstrapContext(ctx)
			return err
		})
		_, _ = Pool(0, count, NetworkWorkers, func(i int) error {
			for _, ni := range nw.Servers[i].Nodes() {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				nw.Servers[i].Ping(ni.Addr.UDP())
			}
			return nil
		})
		if ctx.Err() != nil || round == 0 && fails > count/10 {
			nw.Close()
			return nil, fmt.Errorf("bootstrap round %d: %d of %d failed: %w", round+1, fails, count, errors.Join(err, ctx.Err()))
		}
	}
	return nw, nil
}

// Announce makes server i announce ih on port (get_peers, then
// announce_peer to the nearest) and returns the peer the others will
// hand out.
func (nw *Network) Announce(ctx context.Context, i int, ih [20]byte, port int) (netip.AddrPort, error) {
	a, err := nw.Servers[i].AnnounceTraversal(ih, adht.AnnouncePeer(adht.AnnouncePeerOpts{Port: port}))
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer a.Close()
	stop := context.AfterFunc(ctx, a.Close)
	defer stop()
	for range a.Peers {
	}
	<-a.Finished()
	return netip.AddrPortFrom(nw.Addrs[i].Addr(), uint16(port)), ctx.Err()
}

// Close stops every server and waits for their sockets' delayed writes.
func (nw *Network) Close() {
	for _, s := range nw.Servers {
		s.Close() // closes its socket on a goroutine
	}
	for _, dc := range nw.Conns {
		dc.Close()
	}
}

// Pool runs f(i) for i in [from, to) on workers goroutines and returns
// how many calls failed, and the first error.
func Pool(from, to, workers int, f func(i int) error) (int, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fails int
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if fails++; first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return fails, first
}
