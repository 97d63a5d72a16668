package dht

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

// fakeResponders start count KRPC endpoints on 127.0.23.x that answer every
// query with an empty node list and tell the querier it is at claim.
func fakeResponders(t *testing.T, first, count int, claim netip.AddrPort) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < count; i++ {
		id := routing.RandomID(testRand())
		id[0] = byte(first + i) // distinct IDs
		ip := krpc.Addr(claim)
		tr, err := krpc.New(krpc.Config{
			Conn: listenLoopback(t, 23, first+i),
			Handler: func(netip.AddrPort, *krpc.Msg) *krpc.Msg {
				return &krpc.Msg{R: &krpc.Return{ID: id}, IP: &ip}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		addrs = append(addrs, tr.LocalAddr().String())
	}
	return addrs
}

// BEP 42: once enough nodes agree on our external address, our node ID is
// one that is valid for it; an ID the user fixed is kept; a minority of
// voters cannot move us.
func TestExternalAddressVoteSetsSecureID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	public := netip.MustParseAddrPort("1.2.3.4:6881")

	honest := fakeResponders(t, 1, 6, public)
	n, err := New(Config{Conn: listenLoopback(t, 23, 100), Bootstrap: honest, QueryTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if routing.IDMatchesIP(n.ID(), public.Addr()) {
		t.Fatal("a random ID matched by chance; rerun")
	}
	_, _ = n.Bootstrap(ctx)
	waitFor(t, 5*time.Second, "a BEP 42 ID for 1.2.3.4", func() bool { return routing.IDMatchesIP(n.ID(), public.Addr()) })

	fixed := routing.RandomID(testRand())
	pinned, err := New(Config{Conn: listenLoopback(t, 23, 101), ID: fixed, Bootstrap: honest, QueryTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pinned.Close() })
	_, _ = pinned.Bootstrap(ctx)
	time.Sleep(100 * time.Millisecond)
	if pinned.ID() != fixed {
		t.Fatal("a fixed ID was replaced")
	}
}

func TestIPVotesNeedQuorumAndMajority(t *testing.T) {
	var v ipVotes
	a, b := netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("5.6.7.8")
	voter := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{9, 9, 9, byte(i)}) }
	for i := 0; i < ipQuorum-1; i++ {
		if _, changed := v.add(voter(i), a); changed {
			t.Fatalf("changed after %d votes, quorum is %d", i+1, ipQuorum)
		}
	}
	if got, changed := v.add(voter(ipQuorum), a); !changed || got != a {
		t.Fatalf("quorum reached: %v %v", got, changed)
	}
	// The same voter voting again does not count twice.
	for i := 0; i < 10; i++ {
		v.add(voter(100), b)
	}
	if v.external != a {
		t.Fatal("one voter moved the tally")
	}
	// A minority of new voters for b cannot win.
	for i := 0; i < ipQuorum-1; i++ {
		if _, changed := v.add(voter(50+i), b); changed {
			t.Fatal("a minority changed the address")
		}
	}
	// The table of voters stays bounded.
	for i := 0; i < 1000; i++ {
		v.add(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), b)
	}
	if len(v.byVoter) > ipVoters || len(v.order) > ipVoters {
		t.Fatalf("%d voters kept, bound is %d", len(v.byVoter), ipVoters)
	}
}
