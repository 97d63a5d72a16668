package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"

	"node/internal/testutil"
	"node/krpc"
	"node/routing"
)

// ipVoteNode starts a node at 127.0.23.<host> on an in-memory network,
// bootstrapping through voters, each at its own address and telling it,
// in BEP 42's "ip", that it is at the given claim. Time is the returned
// clock's.
func ipVoteNode(t *testing.T, host int, id routing.ID, voters map[netip.AddrPort][]string) (*Node, *fakeClock) {
	t.Helper()
	mem := newMemNet()
	r := testRand()
	var boot []string
	for claim, ips := range voters {
		at := krpc.Addr(claim)
		for _, ip := range ips {
			vid := routing.RandomID(r)
			v, err := krpc.New(krpc.Config{Conn: mem.listen(t, ip), Handler: func(netip.AddrPort, *krpc.Msg) *krpc.Msg {
				return &krpc.Msg{R: &krpc.Return{ID: vid}, IP: &at}
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { v.Close() })
			boot = append(boot, v.LocalAddr().String())
		}
	}
	clock := newFakeClock()
	n, err := New(Config{Conn: mem.listen(t, fmt.Sprintf("127.0.23.%d", host)), ID: id, Bootstrap: boot, Now: clock.Now,
		QueryTimeout: 300 * time.Millisecond, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = n.Bootstrap(ctx)
	return n, clock
}

// hosts is count loopback addresses, each in a /24 of its own when
// distinct is set, else all in 127.<a>.0.0/24.
func hosts(a, count int, distinct bool) []string {
	var out []string
	for i := 1; i <= count; i++ {
		if distinct {
			out = append(out, fmt.Sprintf("127.%d.%d.1", a, i))
		} else {
			out = append(out, fmt.Sprintf("127.%d.0.%d", a, i))
		}
	}
	return out
}

// waitForID moves time on until n's ID is valid for ip.
func waitForID(t *testing.T, n *Node, clock *fakeClock, ip netip.Addr) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "a BEP 42 ID for "+ip.String(), func() bool {
		clock.Advance(5 * time.Second)
		return routing.IDMatchesIP(n.ID(), ip)
	})
}

// BEP 42: once enough nodes agree on our external address, our node ID is
// one that is valid for it; an ID the user fixed is kept.
func TestExternalAddressVoteSetsSecureID(t *testing.T) {
	public := netip.MustParseAddrPort("1.2.3.4:6881")
	n, clock := ipVoteNode(t, 100, routing.ID{}, map[netip.AddrPort][]string{public: hosts(23, 6, true)})
	var st Stats
	testutil.WaitFor(t, 10*time.Second, "the six votes to be counted", func() bool {
		var err error
		st, err = n.Stats(context.Background())
		return err == nil && st.Voters == 6
	})
	if st.External.IsValid() || routing.IDMatchesIP(n.ID(), public.Addr()) {
		// No time has passed, so no majority has lasted ipSustain.
		t.Fatalf("the votes were taken at once (external address %v), or a random ID matched by chance", st.External)
	}
	waitForID(t, n, clock, public.Addr())

	fixed := routing.RandomID(testRand())
	pinned, clock := ipVoteNode(t, 101, fixed, map[netip.AddrPort][]string{public: hosts(23, 6, true)})
	testutil.WaitFor(t, 10*time.Second, "the votes to settle", func() bool {
		clock.Advance(5 * time.Second)
		st, err := pinned.Stats(context.Background())
		return err == nil && st.External == public.Addr()
	})
	if pinned.ID() != fixed {
		t.Fatal("a fixed ID was replaced")
	}
}

// Through the KRPC path: liars that are one /24, however many addresses
// they have, are one vote, and a claim of the other family is no vote, so
// six honest nodes set our ID against seven liars.
func TestExternalAddressVoteResistsLiars(t *testing.T) {
	public := netip.MustParseAddrPort("1.2.3.4:6881")
	for i, tc := range []struct {
		name  string
		claim netip.AddrPort
		liars []string
	}{
		{"one /24", netip.MustParseAddrPort("5.6.7.8:6881"), hosts(24, 7, false)},
		{"IPv6 claim", netip.MustParseAddrPort("[2001:db8::1]:6881"), hosts(25, 7, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, clock := ipVoteNode(t, 102+i, routing.ID{}, map[netip.AddrPort][]string{
				public:   hosts(26+i, 6, true),
				tc.claim: tc.liars,
			})
			waitForID(t, n, clock, public.Addr())
			if routing.IDMatchesIP(n.ID(), tc.claim.Addr()) {
				t.Fatal("our ID is valid for the liars' claim")
			}
		})
	}
}

// A bare node for the tally: votes reach vote() directly, on the test's
// goroutine, as the loop would deliver them.
func voteNode(is4 bool) *Node {
	return &Node{is4: is4, log: zap.NewNop(), rng: testRand(), cfg: Config{ID: routing.ID{1}}}
}

func TestIPVotesOnePerPrefix(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := netip.MustParseAddr("2001:db8:aaaa::1"), netip.MustParseAddr("2001:db8:bbbb::1")
	var v ipVotes
	for i := 0; i < ipVoters; i++ {
		v.add(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, byte(i), 15: 1}), a, t0)
	}
	if got, changed := v.check(t0.Add(ipSustain)); !changed || got != a {
		t.Fatalf("32 honest voters: %v %v", got, changed)
	}
	// 17 addresses of one /64, again and again, are one voter.
	for round := 0; round < 3; round++ {
		for i := 0; i < 17; i++ {
			now := t0.Add(time.Duration(round+1) * minIDChangeInterval)
			if got, changed := v.add(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 9, 9, 15: byte(i + 1)}), b, now); changed || got != a {
				t.Fatalf("one /64 moved the address to %v", got)
			}
		}
	}
	if len(v.byVoter) != ipVoters {
		t.Fatalf("%d voters kept, bound %d", len(v.byVoter), ipVoters)
	}

	// IPv4: 7 addresses of one /24 against 6 honest /24s.
	a4, b4 := netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("5.6.7.8")
	var w ipVotes
	for i := 0; i < 7; i++ {
		w.add(netip.AddrFrom4([4]byte{9, 9, 9, byte(i + 1)}), b4, t0)
	}
	for i := 0; i < 6; i++ {
		w.add(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), a4, t0)
	}
	if got, changed := w.check(t0.Add(ipSustain)); !changed || got != a4 {
		t.Fatalf("6 honest /24s against one: %v %v", got, changed)
	}
}

// The tally needs a quorum, a clear majority, and that majority kept for
// ipSustain; it stays bounded.
func TestIPVotesNeedQuorumAndMajority(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	var v ipVotes
	a, b := netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("5.6.7.8")
	voter := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{9, 9, byte(i), 1}) }
	for i := 0; i < ipQuorum-1; i++ {
		v.add(voter(i), a, t0)
	}
	if _, changed := v.check(t0.Add(time.Hour)); changed {
		t.Fatalf("changed after %d votes, quorum is %d", ipQuorum-1, ipQuorum)
	}
	v.add(voter(ipQuorum), a, t0)
	if _, changed := v.check(t0.Add(ipSustain - time.Second)); changed {
		t.Fatal("changed before the majority had lasted")
	}
	if got, changed := v.check(t0.Add(ipSustain)); !changed || got != a {
		t.Fatalf("quorum reached: %v %v", got, changed)
	}
	t1 := t0.Add(2 * minIDChangeInterval)
	// A minority of new voters for b cannot win, however long it waits.
	for i := 0; i < ipQuorum; i++ {
		v.add(voter(50+i), b, t1)
	}
	if _, changed := v.check(t1.Add(time.Hour)); changed {
		t.Fatal("a minority changed the address")
	}
	// The table of voters stays bounded.
	for i := 0; i < 1000; i++ {
		v.add(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), b, t1)
	}
	if len(v.byVoter) > ipVoters || len(v.order) > ipVoters {
		t.Fatalf("%d voters kept, bound is %d", len(v.byVoter), ipVoters)
	}
}

// However the voters flip, the adopted address (and our ID with it)
// changes at most once per minIDChangeInterval.
func TestIPVotesChangeAtMostOncePerInterval(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	addrs := []netip.Addr{netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("5.6.7.8")}
	var v ipVotes
	var changes []time.Time
	for s := 0; s < 4*int(minIDChangeInterval/time.Minute); s++ {
		// Every voter flips every three minutes: long enough for a
		// majority to last ipSustain, far more often than the interval.
		now := t0.Add(time.Duration(s) * time.Minute)
		for i := 0; i < 8; i++ {
			if _, changed := v.add(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), addrs[(s/3)%2], now); changed {
				changes = append(changes, now)
			}
		}
		if _, changed := v.check(now.Add(30 * time.Second)); changed {
			changes = append(changes, now.Add(30*time.Second))
		}
	}
	if len(changes) < 2 {
		t.Fatalf("%d changes, want a few to check their spacing", len(changes))
	}
	for i := 1; i < len(changes); i++ {
		if d := changes[i].Sub(changes[i-1]); d < minIDChangeInterval {
			t.Fatalf("changes %d and %d %v apart, bound %v", i-1, i, d, minIDChangeInterval)
		}
	}
}

// A claim our socket cannot have, or that its voter could not have seen,
// is no vote; one peer's yourip, at every handshake and from every address
// of its /64, is one.
func TestIPVotesFamilyAndRepeats(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	n := voteNode(true)
	v6, v4 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("1.2.3.4")
	for i := 0; i < 20; i++ {
		n.vote(ipVoteEvent{voter: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i), 15: 1}), ip: v6}, t0)
		n.vote(ipVoteEvent{voter: netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), ip: v6}, t0)
	}
	if len(n.votes4.byVoter)+len(n.votes6.byVoter) != 0 {
		t.Fatalf("IPv6 claims on an IPv4 node counted: %v %v", n.votes4.byVoter, n.votes6.byVoter)
	}
	dual := voteNode(false)
	dual.vote(ipVoteEvent{voter: netip.MustParseAddr("2001:db8:1::1"), ip: v4}, t0)
	if len(dual.votes4.byVoter)+len(dual.votes6.byVoter) != 0 {
		t.Fatal("an IPv6 voter's IPv4 claim counted")
	}

	m := voteNode(false)
	m.events = make(chan event, 1)
	for hs := 0; hs < 100; hs++ {
		for i := 0; i < 8; i++ {
			m.ReportExternalIP(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7, 7, 15: byte(i + 1)}), v6)
			m.vote((<-m.events).(ipVoteEvent), t0) // as the loop would
		}
	}
	if len(m.votes6.byVoter) != 1 {
		t.Fatalf("100 yourips from one peer are %d votes", len(m.votes6.byVoter))
	}
}

// A dual-stack node's IPv4 and IPv6 voters see two addresses. Each family
// has its own tally, so an honest mixed population agrees on both, and
// our ID derives from the IPv4 one; an IPv6-only socket has no IPv4
// address, so it counts no IPv4 claim, and its ID derives from the IPv6
// one.
func TestIPVotesDualStack(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	a4, a6 := netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("2001:db8:1::1")
	for _, v6only := range []bool{false, true} {
		n := voteNode(false)
		n.v6only = v6only
		n.cfg.ID = routing.ID{} // ours to derive
		n.table = routing.New(n.self, n.tableConfig())
		for i := 0; i < 20; i++ {
			n.vote(ipVoteEvent{voter: netip.AddrFrom4([4]byte{9, byte(i), 0, 1}), ip: a4}, t0)
		}
		for i := 0; i < 12; i++ {
			n.vote(ipVoteEvent{voter: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 9, byte(i), 15: 1}), ip: a6}, t0)
		}
		n.checkVotes(t0.Add(ipSustain))
		want4 := a4
		if v6only {
			want4 = netip.Addr{}
		}
		if n.votes4.external != want4 || n.votes6.external != a6 {
			t.Fatalf("v6only %v: 20 honest IPv4 and 12 honest IPv6 voters adopted %v and %v", v6only, n.votes4.external, n.votes6.external)
		}
		want := a4
		if v6only {
			want = a6
		}
		if !routing.IDMatchesIP(n.self, want) || n.idVotes().external != want {
			t.Errorf("v6only %v: ID %x is not derived from %v", v6only, n.self, want)
		}
	}
}

// Which tally our ID follows depends on whether the socket takes IPv4.
func TestIPv6OnlySocket(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		want          bool
	}{
		{"udp4", "127.0.0.1:0", false},
		{"udp6", "[::1]:0", true},
		{"udp", "[::]:0", false}, // Go's default: dual-stack
		{"udp6", "[::]:0", true}, // Go sets IPV6_V6ONLY
	} {
		c, err := net.ListenPacket(tc.network, tc.addr)
		if err != nil {
			t.Logf("%s %s: %v", tc.network, tc.addr, err)
			continue
		}
		got := ipv6Only(c)
		c.Close()
		if got != tc.want && (tc.addr != "[::]:0" || runtime.GOOS == "linux") {
			t.Errorf("%s %s: IPv6 only %v, want %v", tc.network, tc.addr, got, tc.want)
		}
	}
}
