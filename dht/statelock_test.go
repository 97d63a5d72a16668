package dht

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"node/routing"
)

// A second node on a state directory in use runs without it: it neither
// takes the saved ID (two nodes would share one) nor saves over the
// first's file. Once the first has closed, the next one loads its state.
func TestStateDirOneProcessAtATime(t *testing.T) {
	dir := t.TempDir()
	first, err := New(Config{Conn: listenLoopback(t, 33, 1), StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Save(); err != nil {
		t.Fatal(err)
	}
	second, err := New(Config{Conn: listenLoopback(t, 33, 2), StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID() == first.ID() {
		t.Fatal("the second node took the ID of the one using the directory")
	}
	if err := second.Save(); err == nil {
		t.Fatal("the second node saved into a directory in use")
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := loadState(dir); err != nil || st == nil || st.ID != first.ID() {
		t.Fatalf("after the second closed, the state is %+v (%v), want the first's ID %v", st, err, first.ID())
	}
	id := first.ID()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := New(Config{Conn: listenLoopback(t, 33, 3), StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if third.ID() != id {
		t.Fatalf("after the first closed, the next node has ID %v, want the saved %v", third.ID(), id)
	}
}

// With BootstrapFallback, a warm start rejoins through its saved nodes and
// sends the routers nothing; when none of those answers any more, its
// bootstrap falls back to the routers.
func TestWarmStartLeavesRoutersAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(13, 14))
	nodes := startOurs(t, 34, 2*routing.K, nil, nil)
	bootstrapAll(t, ctx, nodes)

	// The router is a socket that reads and never answers: all that
	// matters is whether it is asked.
	router := &packetCounter{PacketConn: listenLoopback(t, 34, 100)}
	defer router.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := router.ReadFrom(buf); err != nil {
				return
			}
		}
	}()

	// A saved table of live nodes.
	dir := t.TempDir()
	st := &savedState{ID: routing.RandomID(r)}
	for _, n := range nodes {
		st.add(routing.Contact{ID: n.ID(), Addr: n.Addr()})
	}
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	boot := []string{router.LocalAddr().String()}
	warm, err := New(Config{Conn: listenLoopback(t, 34, 101), StateDir: dir, Bootstrap: boot, BootstrapFallback: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := warm.Bootstrap(ctx); err != nil || got < routing.K {
		t.Fatalf("warm bootstrap: %d nodes, %v", got, err)
	}
	if _, err := warm.GetPeers(ctx, routing.RandomID(r), nil); err != nil {
		t.Fatalf("warm lookup: %v", err)
	}
	warm.Close()
	if n := router.got(warm.Addr()); n != 0 {
		t.Fatalf("the router got %d packets from a warm start", n)
	}

	// The same saved table once every node in it is gone.
	dead := &savedState{ID: st.ID}
	for i := range routing.K {
		pc := listenLoopback(t, 34, 120+i)
		dead.add(routing.Contact{ID: routing.RandomID(r), Addr: addrOf(t, pc)})
		pc.Close()
	}
	dir2 := t.TempDir()
	if err := saveState(dir2, dead); err != nil {
		t.Fatal(err)
	}
	stale, err := New(Config{Conn: listenLoopback(t, 34, 102), StateDir: dir2, Bootstrap: boot,
		BootstrapFallback: true, QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	_, _ = stale.Bootstrap(ctx) // nobody answers: the router is mute
	if router.got(stale.Addr()) == 0 {
		t.Fatal("a stale state's bootstrap never asked the router")
	}
}

// packetCounter counts the datagrams read through it by source.
type packetCounter struct {
	net.PacketConn
	mu   sync.Mutex
	from map[string]int
}

func (c *packetCounter) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		c.mu.Lock()
		if c.from == nil {
			c.from = map[string]int{}
		}
		c.from[a.String()]++
		c.mu.Unlock()
	}
	return n, a, err
}

func (c *packetCounter) got(from netip.AddrPort) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.from[from.String()]
}

// A lookup that begins from a stale warm state, none of whose saved nodes
// answers any more, falls back to the bootstrap addresses by itself and
// finds the peer there, without a Bootstrap having run first (node peers
// looks up at once, beside its bootstrap).
func TestStaleStateLookupFallsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(15, 16))
	holder := startOurs(t, 35, 1, nil, nil)[0]
	ih := routing.RandomID(r)
	peer := netip.MustParseAddrPort("10.1.2.3:4567")
	holder.store.add(ih, peer, time.Now())

	dead := &savedState{ID: routing.RandomID(r)}
	for i := range routing.K {
		pc := listenLoopback(t, 35, 120+i)
		dead.add(routing.Contact{ID: routing.RandomID(r), Addr: addrOf(t, pc)})
		pc.Close()
	}
	dir := t.TempDir()
	if err := saveState(dir, dead); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Conn: listenLoopback(t, 35, 100), StateDir: dir, Bootstrap: []string{holder.Addr().String()},
		BootstrapFallback: true, QueryTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	got := make(chan netip.AddrPort, 4)
	st, err := n.GetPeers(ctx, ih, got)
	if err != nil {
		t.Fatalf("GetPeers: %v (%+v)", err, st)
	}
	if st.Peers != 1 || <-got != peer {
		t.Fatalf("%+v: want the one peer %v", st, peer)
	}
}
