package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/torrent/mse"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/metadata"
)

// busy admits a handshake from a that has just sent its first bytes: not
// evictable for muxEvictAfter.
func busy(t *testing.T, b *muxBudget, a string, now time.Time) *hsEntry {
	t.Helper()
	e, victim, ok := b.admit(nil, netip.MustParseAddr(a), now)
	if !ok || victim != nil {
		t.Fatalf("%s not admitted (victim %v)", a, victim)
	}
	e.read(68, now)
	return e
}

func refused(t *testing.T, b *muxBudget, a string, now time.Time) {
	t.Helper()
	if _, _, ok := b.admit(nil, netip.MustParseAddr(a), now); ok {
		t.Fatalf("%s admitted beyond the bound", a)
	}
}

// Each bound of a Mux's handshake budget holds at its limit when none of
// the handshakes in its scope is evictable: maxConnsPerIP per IPv4
// address or IPv6 /64, maxHandshakesPerNet per IPv4 /24 or IPv6 /48
// (however many /64s a /56 holds), maxMuxHandshakes over all; a
// newcomer from outside a full scope still gets in.
func TestMuxBudgetBounds(t *testing.T) {
	now := time.Unix(1e9, 0)
	t.Run("per address", func(t *testing.T) {
		b := &muxBudget{max: maxMuxHandshakes}
		for range maxConnsPerIP {
			busy(t, b, "192.0.2.1", now)
		}
		refused(t, b, "192.0.2.1", now)
		busy(t, b, "192.0.2.2", now)
		for i := range maxConnsPerIP {
			busy(t, b, fmt.Sprintf("2001:db8:1:2::%d", i+1), now)
		}
		refused(t, b, "2001:db8:1:2:ffff::1", now) // the same /64
	})
	t.Run("per IPv4 /24", func(t *testing.T) {
		b := &muxBudget{max: maxMuxHandshakes}
		for i := range maxHandshakesPerNet {
			busy(t, b, fmt.Sprintf("198.51.100.%d", 1+i/maxConnsPerIP), now)
		}
		refused(t, b, "198.51.100.200", now)
		busy(t, b, "198.51.101.1", now)
	})
	t.Run("per IPv6 /48", func(t *testing.T) {
		b := &muxBudget{max: maxMuxHandshakes}
		admitted := 0
		// Every /64 of one /56, one handshake each.
		for i := range 256 {
			a := netip.MustParseAddr(fmt.Sprintf("2001:db8:7:%x::1", 0x100+i))
			if e, _, ok := b.admit(nil, a, now); ok {
				e.read(68, now)
				admitted++
			}
		}
		if admitted != maxHandshakesPerNet {
			t.Fatalf("%d handshakes from one /56, bound %d per /48", admitted, maxHandshakesPerNet)
		}
		busy(t, b, "2001:db8:8::1", now)
	})
	t.Run("overall", func(t *testing.T) {
		b := &muxBudget{max: maxMuxHandshakes}
		for i := range maxMuxHandshakes {
			busy(t, b, fmt.Sprintf("10.%d.0.1", i), now)
		}
		refused(t, b, "10.200.0.1", now)
		b.mu.Lock()
		total, nets := b.total, len(b.perNet)
		b.mu.Unlock()
		if total != maxMuxHandshakes || nets != maxMuxHandshakes {
			t.Fatalf("%d handshakes in %d nets counted, want %d", total, nets, maxMuxHandshakes)
		}
	})
}

// A full budget makes room: the newcomer takes the place of the
// evictable handshake in the full scope that has been silent longest,
// and the counts stay at the bound. A silent one is evictable at once;
// one that has sent bytes only from muxEvictAfter, if it has been idle
// that long or averages under muxMinHandshakeRate. One handed to its
// torrent is never evicted, and evicted and done are counted once.
func TestMuxBudgetEvicts(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	b := &muxBudget{max: 5}
	honest := busy(t, b, "10.0.0.1", t0)
	honest.read(100, at(1500*time.Millisecond))
	silentOld, _, _ := b.admit(nil, netip.MustParseAddr("10.1.0.1"), t0)
	silentNew, _, _ := b.admit(nil, netip.MustParseAddr("10.2.0.1"), at(time.Second))
	drip, _, _ := b.admit(nil, netip.MustParseAddr("10.3.0.1"), t0)
	drip.read(1, at(1500*time.Millisecond)) // idle 0.5 s, but 1 byte in 2 s

	now := at(2 * time.Second)
	for _, c := range []struct {
		e    *hsEntry
		want bool
	}{{honest, false}, {silentOld, true}, {silentNew, true}, {drip, true}} {
		if got := c.e.evictable(now); got != c.want {
			t.Errorf("%v: evictable %v, want %v", c.e.k, got, c.want)
		}
	}
	// Idle since its accept, but younger than muxEvictAfter.
	if busy(t, b, "10.9.0.1", at(1500*time.Millisecond)).evictable(now) {
		t.Error("a handshake with bytes evictable before muxEvictAfter")
	}

	order := []*hsEntry{silentOld, silentNew, drip} // the longest idle first
	for i, want := range order {
		e, victim, ok := b.admit(nil, netip.MustParseAddr(fmt.Sprintf("10.20.%d.1", i)), now)
		if !ok || victim != want {
			t.Fatalf("newcomer %d: ok %v, evicted %v, want %v", i, ok, victim, want.k)
		}
		e.read(68, now)
		if victim.state.Load() != entryEvicted || victim.claim() {
			t.Fatal("an evicted handshake can still be handed to its torrent")
		}
		b.done(victim) // its goroutine ends: not counted twice
	}
	b.mu.Lock()
	total := b.total
	b.mu.Unlock()
	if total != b.max {
		t.Fatalf("%d handshakes counted, want %d", total, b.max)
	}
	refused(t, b, "10.30.0.1", now)

	// Per address: a silent one from the same address is replaced, a
	// claimed one is not.
	b = &muxBudget{max: maxMuxHandshakes}
	var es []*hsEntry
	for range maxConnsPerIP {
		e, _, _ := b.admit(nil, netip.MustParseAddr("10.0.0.1"), t0)
		es = append(es, e)
	}
	for _, e := range es[:maxConnsPerIP-1] {
		if !e.claim() {
			t.Fatal("claim failed")
		}
	}
	e, victim, ok := b.admit(nil, netip.MustParseAddr("10.0.0.1"), at(time.Second))
	if !ok || victim != es[maxConnsPerIP-1] {
		t.Fatalf("ok %v, evicted %v: want the unclaimed one", ok, victim)
	}
	e.read(68, at(time.Second))
	refused(t, b, "10.0.0.1", at(1500*time.Millisecond))
}

// An address whose handshake was evicted may not evict another for
// muxEvictedFor: a slowloris that reconnects whenever it is evicted is
// refused while the scope is full, instead of churning through it (and
// through an honest initiator silent while it makes its key).
func TestMuxBudgetEvictedMayNotEvict(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	b := &muxBudget{max: 2}
	if _, _, ok := b.admit(nil, netip.MustParseAddr("10.1.0.1"), t0); !ok {
		t.Fatal("first not admitted")
	}
	if _, _, ok := b.admit(nil, netip.MustParseAddr("10.2.0.1"), t0); !ok {
		t.Fatal("second not admitted")
	}
	// A newcomer evicts the silent 10.1.0.1 (idle longest: both are, the
	// first found of equals; either will do for what follows).
	honest, victim, ok := b.admit(nil, netip.MustParseAddr("10.3.0.1"), t0.Add(time.Millisecond))
	if !ok || victim == nil {
		t.Fatalf("the newcomer: ok %v, victim %v", ok, victim)
	}
	b.done(victim)
	evicted := victim.k.Addr().String()
	// The evicted address comes back at once: refused, and the newcomer,
	// silent while it makes its key, stays.
	refused(t, b, evicted, t0.Add(2*time.Millisecond))
	if honest.state.Load() != entryLive {
		t.Fatal("the newcomer was evicted by the address it replaced")
	}
	// After muxEvictedFor it may evict again.
	if _, v, ok := b.admit(nil, netip.MustParseAddr(evicted), t0.Add(muxEvictedFor+time.Millisecond)); !ok || v == nil {
		t.Fatalf("after muxEvictedFor: ok %v, victim %v", ok, v)
	}
	// The addresses remembered are bounded.
	b = &muxBudget{max: 1}
	for i := range maxEvictedAddrs + 10 {
		b.admit(nil, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0)
	}
	if n := b.evicted.len(); n != maxEvictedAddrs {
		t.Fatalf("%d evicted addresses remembered, want %d", n, maxEvictedAddrs)
	}
}

func holdLocals(n int, prefix func(i int) string) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.MustParseAddr(prefix(i))
	}
	return out
}

// Slowloris on a Mux: attackers from many addresses and networks keep
// every handshake slot taken, some silent and some dripping their
// handshake a byte a second, connecting again whenever one is closed.
// An honest leecher still gets through, and fetches the torrent: the
// attackers' slots are evicted for it. And the reviewer's variant: 43
// addresses of one /24 with 3 silent connections each, and an honest
// peer from the same /24.
func TestMuxSlowloris(t *testing.T) {
	src, a, _ := twoContents(t)
	m := newMux(t, "127.0.57.1", EncryptPrefer)
	seedBehind(t, m, a, src, EncryptPrefer)
	addr := muxAddr(m)

	// 5 addresses × 3 per /24: 15, under maxHandshakesPerNet, so the
	// whole budget is taken only with evictions.
	at := func(base int) func(int) string {
		return func(i int) string { return fmt.Sprintf("127.%d.%d.%d", base+i/5/250, (i/5)%250, 1+i%5) }
	}
	silent, err := adversary.StartHandshakeHold(holdLocals(maxMuxHandshakes/maxConnsPerIP, at(10)), maxConnsPerIP, addr, a.Info.InfoHash, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Stop()
	drip, err := adversary.StartHandshakeHold(holdLocals(maxMuxHandshakes/maxConnsPerIP/2, at(11)), maxConnsPerIP, addr, a.Info.InfoHash, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer drip.Stop()
	testutil.WaitFor(t, 5*time.Second, "the budget to be full", func() bool {
		m.hs.mu.Lock()
		defer m.hs.mu.Unlock()
		return m.hs.total == maxMuxHandshakes
	})

	dst := t.TempDir()
	leech, _ := runTorrent(t, Config{InfoHash: a.Info.InfoHash, Info: a.Info, Dir: dst,
		Peers: []netip.AddrPort{addr}, Dial: boundDial("127.0.57.2"), Encryption: EncryptPrefer})
	start := time.Now()
	waitDone(t, leech, 30*time.Second)
	sameTree(t, src, dst, a.Info.Name)
	t.Logf("fetched in %v", time.Since(start))
	st := m.Stats()
	if st.Evicted == 0 || st.Routed == 0 {
		t.Fatalf("Mux stats %+v: want evictions and the leecher routed", st)
	}
	m.hs.mu.Lock()
	total := m.hs.total
	m.hs.mu.Unlock()
	if total > maxMuxHandshakes {
		t.Fatalf("%d handshakes in progress, bound %d", total, maxMuxHandshakes)
	}
	_, dials, closes := silent.Counts()
	t.Logf("Mux %+v; the silent attackers dialled %d times, %d closed", st, dials, closes)
	silent.Stop()
	drip.Stop()

	// The reviewer's: one /24 full of silent connections, an honest
	// MSE and a plaintext peer from the same /24.
	var locals []netip.Addr
	for i := range 43 {
		locals = append(locals, netip.AddrFrom4([4]byte{127, 0, 63, byte(10 + i)}))
	}
	hold, err := adversary.StartHandshakeHold(locals, maxConnsPerIP, addr, a.Info.InfoHash, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Stop()
	testutil.WaitFor(t, 5*time.Second, "the /24 to be full", func() bool {
		m.hs.mu.Lock()
		defer m.hs.mu.Unlock()
		return m.hs.perNet[netKey(netip.MustParseAddr("127.0.63.1"))] == maxHandshakesPerNet
	})
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	honest := netip.MustParseAddr("127.0.63.200")
	p, err := adversary.DialPeer(ctx, honest, addr, a.Info.InfoHash, adversary.RandomID())
	if err != nil {
		t.Fatalf("an honest peer from the attackers' /24: %v", err)
	}
	p.Close()
	if _, err := adversary.MSEInitiate(ctx, honest, addr, a.Info.InfoHash, a.Info.InfoHash, mse.CryptoMethodRC4); err != nil {
		t.Fatalf("an honest MSE initiator from the attackers' /24: %v", err)
	}
}

// A connection that sends nothing is closed after firstBytesTimeout,
// long before handshakeTimeout, even when the budget has room.
func TestMuxFirstBytesTimeout(t *testing.T) {
	m := newMux(t, "127.0.58.1", EncryptPrefer)
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.58.2"), 0))}
	c, err := d.Dial("tcp4", muxAddr(m).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if !closedSoon(c, (firstBytesTimeout+handshakeTimeout)/2) {
		t.Fatal("a silent connection outlived the first-bytes deadline")
	}
	if el := time.Since(start); el < firstBytesTimeout-500*time.Millisecond {
		t.Fatalf("closed after %v, before firstBytesTimeout", el)
	}
	waitHandshakesIdle(t, m)
}

// An MSE initiator's secret keys are the Mux's info-hashes as they were
// at the last change of its torrents: no copy per connection, however
// many torrents it serves, and a torrent registered or gone changes
// them.
func TestMuxSecretKeysShared(t *testing.T) {
	m := NewMux(MuxConfig{})
	defer m.Close()
	var lns []net.Listener
	for i := range 2000 {
		ln, err := m.Listener(metadata.InfoHash{byte(i), byte(i >> 8), 1})
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	if n := len(m.infoHashes()); n != 2000 {
		t.Fatalf("%d secret keys, want 2000", n)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = m.infoHashes() }); allocs != 0 {
		t.Fatalf("%v allocations per connection for its secret keys", allocs)
	}
	lns[0].Close()
	for _, ih := range m.infoHashes() {
		if ih == (metadata.InfoHash{0, 0, 1}) {
			t.Fatal("a closed torrent's info-hash is still a secret key")
		}
	}
	if _, err := m.Listener(metadata.InfoHash{0xff, 0xff, 2}); err != nil {
		t.Fatal(err)
	}
	if n := len(m.infoHashes()); n != 2000 {
		t.Fatalf("%d secret keys after one gone and one added, want 2000", n)
	}
}

// hasPending sees the bytes a peer sent that no one has read, does not
// consume them, and does not wait while a read is blocked on the
// connection (a handshake's goroutine waiting for more).
func TestMuxPendingPeek(t *testing.T) {
	ln := listen4(t, "127.0.58.10")
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if hasPending(s) {
		t.Fatal("pending bytes on a silent connection")
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the byte to be pending", func() bool { return hasPending(s) })
	buf := make([]byte, 2)
	if n, err := s.Read(buf); n != 1 || err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v after the peek", buf[:n], err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = s.Read(buf)
	}()
	done := make(chan bool)
	go func() { done <- hasPending(s) }()
	select {
	case p := <-done:
		if p {
			t.Fatal("pending bytes on a connection that sent nothing more")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the peek waited for a blocked read")
	}
	c.Close()
	<-read
}
