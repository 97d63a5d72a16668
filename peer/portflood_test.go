package peer

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"node/dht"
	"node/internal/adversary"
	"node/krpc"
	"node/routing"
)

// A peer that floods BEP 5 port messages gets one ping, however many it
// sends: later port messages on a connection are ignored, and the ping
// goes through the DHT's bounded ping path. Meanwhile the DHT keeps its
// send budget for answering others.
func TestPortMessageFlood(t *testing.T) {
	const (
		conns   = 3
		perConn = 20_000
		queries = 20
	)
	pc, err := net.ListenPacket("udp4", "127.0.150.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The limits of a node on a public address, as the command line sets.
	node, err := dht.New(dht.Config{
		Conn:             pc,
		RatePerIP:        krpc.DefaultRatePerIP,
		BurstPerIP:       krpc.DefaultBurstPerIP,
		BlockFor:         krpc.DefaultBlockFor,
		SendRate:         krpc.DefaultSendRate,
		MaxAmplification: krpc.DefaultMaxAmplification,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	ln, err := net.Listen("tcp4", "127.0.150.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ih := [20]byte{0x50, 0x72}
	runTorrent(t, Config{InfoHash: ih, Dir: t.TempDir(), Listener: ln, DHT: node})

	// The port the flooders name: a socket at their own address that
	// counts the pings it gets and answers none.
	target, err := adversary.NewNode("127.0.150.2")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	var pings atomic.Int64
	target.Serve(func(q *krpc.Msg, _ netip.AddrPort) *krpc.Msg {
		if q.Q == krpc.MethodPing {
			pings.Add(1)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range conns {
		p, err := adversary.DialPeer(ctx, netip.MustParseAddr("127.0.150.2"), addrOf(ln.Addr()), ih, adversary.RandomID())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.PortFlood(target.Addr.Port(), perConn)
		}()
	}
	wg.Wait()

	// A port message still does what BEP 5 says: the node is pinged.
	for pings.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("no ping for the port messages")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Another node's queries are answered all along.
	q, err := adversary.NewNode("127.0.150.3")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range queries {
		if err := q.Query(node.Addr(), strconv.Itoa(i), krpc.MethodPing, &krpc.Args{ID: routing.ID{1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
	}
	answered := map[string]bool{}
	for len(answered) < queries {
		m, _, err := q.Recv(3 * time.Second)
		if err != nil {
			break
		}
		if m.Y == krpc.KindResponse {
			answered[m.T] = true
		}
	}
	if got := pings.Load(); got > conns {
		t.Errorf("%d port messages made %d pings; want at most one per connection (%d)", conns*perConn, got, conns)
	}
	if len(answered) < queries*9/10 {
		s, _ := node.Stats(t.Context())
		t.Errorf("%d of %d queries from another node answered during the flood; transport: %+v", len(answered), queries, s.Transport)
	}
}
