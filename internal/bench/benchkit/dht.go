package benchkit

import (
	"context"
	"fmt"
	"net"

	"node/dht"
)

// StartDHT starts count of our DHT nodes, the i-th (from 1) on ip(i),
// each with cfg but for its socket and, for all but the first, bootstrap
// from the first; then bootstraps them, so that they know each other. It
// returns the nodes started even on error, for closing.
func StartDHT(ctx context.Context, count int, ip func(i int) string, cfg dht.Config) ([]*dht.Node, error) {
	var nodes []*dht.Node
	var boot []string
	for i := 1; i <= count; i++ {
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip(i), "0"))
		if err != nil {
			return nodes, err
		}
		c := cfg
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
	for _, n := range nodes[1:] {
		if _, err := n.Bootstrap(ctx); err != nil {
			return nodes, fmt.Errorf("DHT bootstrap: %w", err)
		}
	}
	return nodes, nil
}
