package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"node/routing"
)

// PublicRouters are the well-known Mainline DHT entry points. Nothing in
// this package uses them on its own: the command line passes them as its
// default --bootstrap list.
var PublicRouters = []string{
	"router.bittorrent.com:6881",
	"router.utorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"dht.libtorrent.org:25401",
}

// Bootstrap joins the network: it resolves the configured bootstrap
// addresses and runs a find_node lookup for our own ID through them and
// through the nodes saved by the last run. It returns the number of nodes
// in the routing table afterwards, or an error if nobody answered.
func (n *Node) Bootstrap(ctx context.Context) (int, error) {
	var addrs []netip.AddrPort
	for _, hp := range n.cfg.Bootstrap {
		as, err := resolve(ctx, hp)
		if err != nil {
			n.log.Warn("bootstrap address", zap.String("addr", hp), zap.Error(err))
			continue
		}
		addrs = append(addrs, as...)
	}
	n.seedMu.Lock()
	for _, a := range addrs {
		if !containsAddr(n.seeds, a) {
			n.seeds = append(n.seeds, routing.Contact{Addr: a})
		}
	}
	n.seedMu.Unlock()

	_, st, err := n.FindNode(ctx, n.ID())
	if err != nil {
		return 0, fmt.Errorf("dht: bootstrap: %w", err)
	}
	// The own-ID lookup fills the buckets near us; the far ones fill only
	// from lookups aimed into them. Without this a new node's table can
	// miss whole quarters of the key space for its first 15 minutes.
	targets, err := n.sparseTargets(ctx)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, _, _ = n.FindNode(ctx, t)
		}()
	}
	wg.Wait()
	s, err := n.Stats(ctx)
	if err != nil {
		return 0, err
	}
	n.log.Debug("bootstrapped", zap.Int("queries", st.Queries), zap.Int("nodes", s.Nodes))
	return s.Nodes, nil
}

func containsAddr(cs []routing.Contact, a netip.AddrPort) bool {
	for _, c := range cs {
		if c.Addr == a {
			return true
		}
	}
	return false
}

// resolve turns host:port into addresses; an IP literal needs no lookup.
func resolve(ctx context.Context, hostport string) ([]netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
	}
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("bad port in %q", hostport)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return out, nil
}
