// Package dhtnet starts small networks of node's DHT nodes on loopback
// (IPv4 on 127.x, or dual-stack on 127.x and ::1) for the tests of the
// packages above dht (peer, cmd/node). The dht
// package's own tests cannot import it (it imports dht) and keep their own
// builder, which also reaches the Config.
package dhtnet

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"node/dht"
)

// Start starts count DHT nodes on 127.0.<subnet>.1.., each told of the
// first, closed when the test ends, and bootstraps all but the first, so
// that they know each other.
func Start(t testing.TB, subnet, count int) []*dht.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes []*dht.Node
	var boot []string
	for i := 1; i <= count; i++ {
		pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.%d.%d:0", subnet, i))
		if err != nil {
			t.Fatal(err)
		}
		n, err := dht.New(dht.Config{Conn: pc, Bootstrap: boot})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
		if boot == nil {
			boot = []string{n.Addr().String()}
		}
	}
	for _, n := range nodes[1:] {
		if _, err := n.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// StartDual is Start with dual-stack nodes (BEP 32): each also has an
// IPv6 socket on [::1], each told of the first's two addresses. It skips
// the test on a host without IPv6 loopback.
func StartDual(t testing.TB, subnet, count int) []*dht.Node {
	t.Helper()
	if pc, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		pc.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes []*dht.Node
	var boot []string
	for i := 1; i <= count; i++ {
		pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.%d.%d:0", subnet, i))
		if err != nil {
			t.Fatal(err)
		}
		pc6, err := net.ListenPacket("udp6", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		n, err := dht.New(dht.Config{Conn: pc, Conn6: pc6, Bootstrap: boot})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
		if boot == nil {
			boot = []string{n.Addr().String(), n.Addr6().String()}
		}
	}
	for range 2 {
		for _, n := range nodes[1:] {
			if _, err := n.Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return nodes
}
