package benchkit

import (
	"context"
	"fmt"
	"net"
	"sync"

	"node/dht"
)

// StartDHT starts count of our DHT nodes, the i-th (from 1) on ip(i),
// each with cfg but for its socket and, for all but the first, bootstrap
// from the first; then bootstraps them, so that they know each other. It
// returns the nodes started even on error, for closing.
func StartDHT(ctx context.Context, count int, ip func(i int) string, cfg dht.Config) ([]*dht.Node, error) {
	return StartDHTConfigs(ctx, count, ip, func(int) dht.Config { return cfg }, 1)
}

// StartDHTConfigs is StartDHT with the i-th node's config cfg(i) (its
// socket and bootstrap set as StartDHT does) and up to parallel
// bootstraps at once: a network of thousands joins in seconds, not
// minutes. Nodes that join together may not see each other at first;
// the queries between them (a queried node pings its querier back) and
// every later lookup make them acquainted.
func StartDHTConfigs(ctx context.Context, count int, ip func(i int) string, cfg func(i int) dht.Config, parallel int) ([]*dht.Node, error) {
	var nodes []*dht.Node
	var boot []string
	for i := 1; i <= count; i++ {
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip(i), "0"))
		if err != nil {
			return nodes, err
		}
		c := cfg(i)
		c.Conn, c.Bootstrap = pc, boot
		n, err := dht.New(c)
		if err != nil {
			pc.Close()
			return nodes, err
		}
		nodes = append(nodes, n)
		if boot == nil {
			boot = []string{n.Addr().String()}
		}
	}
	parallel = max(parallel, 1)
	sem := make(chan struct{}, parallel)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, n := range nodes[1:] {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := n.Bootstrap(ctx); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("DHT bootstrap: %w", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return nodes, first
}
