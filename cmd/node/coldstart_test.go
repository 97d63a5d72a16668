package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"node/krpc"
)

// node peers looks the info-hash up at once, not after the bootstrap
// lookup of its own ID: the only bootstrap node here keeps every find_node
// for the querier's own ID unanswered until it has been asked get_peers
// for the info-hash, so a node peers that waited for its bootstrap would
// wait out its query timeouts and find nothing.
func TestPeersLooksUpBeforeBootstrapEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := net.ListenPacket("udp4", "127.0.71.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ih := strings.Repeat("cd", 20)
	peer := netip.MustParseAddrPort("127.0.71.9:6881")
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	served := make(chan struct{})
	go func() {
		defer close(served)
		var held []*krpc.Msg
		var heldFrom []net.Addr
		asked := false
		self := krpc.Args{}.ID
		self[0] = 0xfe
		answer := func(q *krpc.Msg, to net.Addr, r *krpc.Return) {
			r.ID = self
			b, err := bencode.Marshal(krpc.Msg{T: q.T, Y: krpc.KindResponse, R: r})
			if err == nil {
				_, _ = pc.WriteTo(b, to)
			}
		}
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q krpc.Msg
			if bencode.Unmarshal(buf[:n], &q) != nil || q.Y != krpc.KindQuery || q.A == nil {
				continue
			}
			switch {
			case q.Q == krpc.MethodGetPeers && q.A.InfoHash != nil && q.A.InfoHash.String() == ih:
				asked = true
				answer(&q, from, &krpc.Return{Token: "tok", Values: krpc.Peers{peer}})
				for i, h := range held {
					answer(h, heldFrom[i], &krpc.Return{})
				}
				held, heldFrom = nil, nil
			case q.Q == krpc.MethodFindNode && q.A.Target != nil && *q.A.Target == q.A.ID && !asked:
				held, heldFrom = append(held, &q), append(heldFrom, from)
			default:
				answer(&q, from, &krpc.Return{})
			}
		}
	}()
	code, out, errOut := runCmd("peers", "--listen", "127.0.71.100:0", "--listen6", "none",
		"--bootstrap", pc.LocalAddr().String(), "--timeout", "20s", ih)
	if code != 0 || strings.TrimSpace(out) != peer.String() {
		t.Fatalf("peers: exit %d, stdout %q, want %v\n%s", code, out, peer, errOut)
	}
	pc.Close()
	<-served
}
