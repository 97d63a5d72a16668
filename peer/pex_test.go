package peer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/peer/wire"
)

// Subnets 127.0.190-199.x belong to these tests. classify, below, makes
// some of them public and one private, so that the rules between classes
// can be seen on loopback.
var (
	pexPublic  = []netip.Prefix{netip.MustParsePrefix("127.0.191.0/24"), netip.MustParsePrefix("127.0.194.0/24"), netip.MustParsePrefix("127.0.196.0/22")}
	pexPrivate = netip.MustParsePrefix("127.0.192.0/24")
)

func pexClassify(a netip.Addr) addrClass {
	for _, p := range pexPublic {
		if p.Contains(a) {
			return classPublic
		}
	}
	if pexPrivate.Contains(a) {
		return classPrivate
	}
	return classOf(a)
}

// The DHT knows one peer, A, a slow download of ours to which two seeders
// are connected (seeds close each other, so A must still be downloading
// for them to stay): the leecher hears of them from A by PEX and
// downloads from them.
func TestPexFindsSeeders(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	lnA := listenTCP(t, "127.0.190.1:0")
	a, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: t.TempDir(), Listener: lnA,
		MaxDownloadRate: 4 << 10})
	var others []*Torrent
	for _, ip := range []string{"127.0.190.2", "127.0.190.3"} {
		dir := t.TempDir()
		copyTree(t, src, dir, "content")
		// Seeds dial the peers they are given.
		tor, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dir,
			Listener: listenTCP(t, ip+":0"), Peers: addrs(lnA), Dial: boundDial(ip), NoDownload: true})
		others = append(others, tor)
	}
	testutil.WaitFor(t, 10*time.Second, "the seeders connected to the first", func() bool {
		return stats(t, a).Peers == 2
	})

	dht := &fakeDHT{
		addr:  netip.MustParseAddrPort("127.0.190.4:6881"),
		from:  netip.MustParseAddrPort("127.0.190.9:6881"),
		peers: addrs(lnA),
	}
	leech, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: listenTCP(t, "127.0.190.4:0"),
		DHT: dht, Dial: boundDial("127.0.190.4")})
	waitDone(t, leech, 60*time.Second)
	sameTree(t, src, dst, "content")

	s := stats(t, leech)
	if s.PexReceived == 0 || s.PexAdded < 2 || s.PexBad != 0 {
		t.Errorf("leecher's PEX: %+v", s)
	}
	for i, o := range others {
		if up := stats(t, o).Uploaded; up == 0 {
			t.Errorf("seeder %d, known only by PEX, uploaded nothing", i+2)
		}
	}
	if sa := stats(t, a); sa.PexSent == 0 {
		t.Errorf("A sent no PEX: %+v", sa)
	}
}

// pexView is what a peer has heard by PEX: contacts added and not yet
// dropped, with the times the messages came.
type pexView struct {
	mu    sync.Mutex
	cur   map[netip.AddrPort]wire.PexFlags
	ever  map[netip.AddrPort]bool
	times []time.Time
	most  int // most added in one message
}

// listen reads p until it fails, folding every ut_pex message (sent to
// adversary.PexID) into v.
func (v *pexView) listen(p *adversary.Peer) {
	v.mu.Lock()
	v.cur, v.ever = make(map[netip.AddrPort]wire.PexFlags), make(map[netip.AddrPort]bool)
	v.mu.Unlock()
	go func() {
		for {
			m, err := p.ReadMsg()
			if err != nil && !errors.Is(err, wire.ErrUnknownMessage) {
				return
			}
			if err != nil || m.Type != wire.Extended || m.ExtendedID != adversary.PexID {
				continue
			}
			px, err := wire.ParsePex(m.Payload)
			if err != nil {
				continue
			}
			v.mu.Lock()
			v.times = append(v.times, time.Now())
			v.most = max(v.most, len(px.Added))
			for _, a := range px.Added {
				v.cur[a.Addr] = a.Flags
				v.ever[a.Addr] = true
			}
			for _, a := range px.Dropped {
				delete(v.cur, a)
			}
			v.mu.Unlock()
		}
	}()
}

func (v *pexView) check(f func(v *pexView) bool) func() bool {
	return func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return f(v)
	}
}

// dialPex connects an adversary from ip to a, with a BEP 10 handshake that
// takes ut_pex and gives port as its listen port (0: none).
func dialPex(t *testing.T, ip string, a netip.AddrPort, ih [20]byte, port int) *adversary.Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := adversary.DialPeer(ctx, netip.MustParseAddr(ip), a, ih, adversary.RandomID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.SendExtHandshake(adversary.PexHandshake(port)); err != nil {
		t.Fatal(err)
	}
	return p
}

// What we tell a peer: the peers we dialled (reachable; a seed as such),
// those that dialled us and gave a listen port, at that port; not one
// that gave none, not the peer itself, not ourselves, nothing more local
// than the peer to a public peer; as deltas, at most once an interval.
func TestPexWhatWeTell(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ih := mi.Info.InfoHash
	lnS := listenTCP(t, "127.0.191.2:0")
	// The seeder serves slowly, so that N is still downloading from it,
	// and has not dropped it as a fellow seed, all through the test.
	runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: lnS, NoDownload: true, MaxUploadRate: 32 << 10})
	const every = time.Second
	lnN := listenTCP(t, "127.0.191.1:0")
	n, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: t.TempDir(), Listener: lnN,
		Peers: addrs(lnS), Dial: boundDial("127.0.191.1"), pexEvery: every, classify: pexClassify})
	nAddr := addrOf(lnN.Addr())
	testutil.WaitFor(t, 10*time.Second, "N connected to the seeder", func() bool { return stats(t, n).Peers == 1 })

	x := dialPex(t, "127.0.191.3", nAddr, ih, 7000) // public, listens on 7000
	dialPex(t, "127.0.191.4", nAddr, ih, 0)         // public, no listen port
	dialPex(t, "127.0.192.5", nAddr, ih, 7001)      // private
	r := dialPex(t, "127.0.191.6", nAddr, ih, 7002) // public: the one listening
	q := dialPex(t, "127.0.192.7", nAddr, ih, 7003) // private: hears of the private one
	var rv, qv pexView
	rv.listen(r)
	qv.listen(q)

	seeder := addrOf(lnS.Addr())
	xAddr := netip.MustParseAddrPort("127.0.191.3:7000")
	zAddr := netip.MustParseAddrPort("127.0.192.5:7001")
	rAddr := netip.MustParseAddrPort("127.0.191.6:7002")
	testutil.WaitFor(t, 10*time.Second, "R heard of the seeder and X", rv.check(func(v *pexView) bool {
		return v.cur[seeder] == wire.PexSeed|wire.PexReachable && v.ever[xAddr]
	}))
	testutil.WaitFor(t, 10*time.Second, "Q heard of Z and R", qv.check(func(v *pexView) bool {
		return v.ever[zAddr] && v.ever[rAddr] && v.ever[seeder]
	}))
	rv.mu.Lock()
	if f := rv.cur[xAddr]; f != 0 {
		t.Errorf("X, which dialled N, has flags %#x", f)
	}
	for a := range rv.ever {
		if a != seeder && a != xAddr {
			t.Errorf("R was told of %v", a)
		}
	}
	rv.mu.Unlock()
	qv.mu.Lock()
	for a := range qv.ever {
		if a == netip.MustParseAddrPort("127.0.192.7:7003") || a == nAddr || a.Addr() == netip.MustParseAddr("127.0.191.4") {
			t.Errorf("Q was told of %v", a)
		}
	}
	qv.mu.Unlock()

	// X leaves: R hears it in the next message, an interval after the
	// last.
	x.Close()
	testutil.WaitFor(t, 10*time.Second, "R heard X dropped", rv.check(func(v *pexView) bool {
		_, ok := v.cur[xAddr]
		return !ok
	}))
	for _, v := range []*pexView{&rv, &qv} {
		v.mu.Lock()
		for i := 1; i < len(v.times); i++ {
			// The sender's clock spaces them by every; the reader's
			// may see them up to a scheduling delay closer.
			if gap := v.times[i].Sub(v.times[i-1]); gap < every-200*time.Millisecond {
				t.Errorf("PEX messages %v apart, interval %v", gap, every)
			}
		}
		v.mu.Unlock()
	}
}

// However many peers we have, a message adds at most pexMaxAdded; the
// rest follow in the next.
func TestPexMaxAddedSent(t *testing.T) {
	const peers = pexMaxAdded + 10
	ih := [20]byte{0x9e, 1}
	lnN := listenTCP(t, "127.0.197.1:0")
	n, _ := runTorrent(t, Config{InfoHash: ih, Dir: t.TempDir(), Listener: lnN, MaxConns: peers + 5,
		pexEvery: 500 * time.Millisecond, classify: pexClassify})
	nAddr := addrOf(lnN.Addr())
	for i := range peers {
		ip := netip.AddrFrom4([4]byte{127, 0, 198, byte(1 + i/maxConnsPerIP)})
		dialPex(t, ip.String(), nAddr, ih, 6000+i)
	}
	testutil.WaitFor(t, 10*time.Second, "every peer connected", func() bool { return stats(t, n).Peers == peers })
	r := dialPex(t, "127.0.197.2", nAddr, ih, 7000)
	var rv pexView
	rv.listen(r)
	testutil.WaitFor(t, 20*time.Second, "R heard of every peer", rv.check(func(v *pexView) bool {
		return len(v.cur) == peers
	}))
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.most != pexMaxAdded || len(rv.times) < 2 {
		t.Errorf("%d messages, at most %d added in one; bound %d", len(rv.times), rv.most, pexMaxAdded)
	}
}

// A peer's messages, taken one at a time with the clock given: the first
// may add pexMaxFirstAdded, later ones pexMaxAdded, the rest counted and
// ignored; one too soon is ignored whole; pexMaxEarly of them are
// tolerated and one more drops the peer. Contacts at one address are
// capped per message, those of one source in all, and a public source
// names nothing more local than itself.
func TestPexReceiveBounds(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir(), classify: pexClassify})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("127.0.194.2:6881")
	ps := &peerState{c: &conn{addr: src}}
	send := func(now time.Time, added ...[]wire.PexPeer) error {
		var p wire.Pex
		for _, a := range added {
			p.Added = append(p.Added, a...)
		}
		b, err := p.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return tor.onPex(ps, b, now)
	}
	ip := netip.MustParseAddr
	now := time.Now()
	// 30 at a victim, 10 private, 10 loopback, 60 public: the first 100
	// are looked at, 3 at the victim and 50 public taken.
	err = send(now, adversary.Ports(ip("127.0.194.9"), 1000, 30), adversary.Hosts(ip("127.0.192.1"), 6881, 10),
		adversary.Hosts(ip("127.0.0.2"), 6881, 10), adversary.Hosts(ip("127.0.196.1"), 6881, 60))
	if err != nil {
		t.Fatal(err)
	}
	want := counters{pexReceived: 1, pexAdded: pexPerIP + 50, pexIgnored: 30 - pexPerIP + 10 + 10 + 10}
	if tor.stats != want {
		t.Fatalf("first message: %+v, want %+v", tor.stats, want)
	}
	// Three quarters of an interval on, 80 more: 50 looked at and taken,
	// 30 ignored; past the source's cap of maxAddrsPerSource the last 3
	// are refused: none of its candidates was tried and failed.
	now = now.Add(pexInterval * 3 / 4)
	if err := send(now, adversary.Hosts(ip("127.0.197.1"), 6881, 80)); err != nil {
		t.Fatal(err)
	}
	want = counters{pexReceived: 2, pexAdded: maxAddrsPerSource, pexIgnored: want.pexIgnored + 33, sourceFull: 3}
	if tor.stats != want {
		t.Fatalf("second message: %+v, want %+v", tor.stats, want)
	}
	if n := tor.sources[ipKey(src.Addr())].addrs; n != maxAddrsPerSource || len(tor.known) != maxAddrsPerSource {
		t.Fatalf("the source holds %d candidates (%d known), bound %d", n, len(tor.known), maxAddrsPerSource)
	}
	for i := range pexMaxEarly {
		if err := send(now.Add(time.Duration(i)*time.Second), adversary.Hosts(ip("127.0.198.1"), 6881, 1)); err != nil {
			t.Fatalf("early message %d: %v", i+1, err)
		}
	}
	if err := send(now.Add(pexInterval/2), adversary.Hosts(ip("127.0.198.1"), 6881, 1)); !errors.Is(err, errPexFlood) {
		t.Fatalf("early message %d: %v, want a flood", pexMaxEarly+1, err)
	}
	if tor.stats.pexEarly != pexMaxEarly+1 || tor.stats.pexReceived != 2 {
		t.Fatalf("after the flood: %+v", tor.stats)
	}
	if err := tor.onPex(ps, []byte("d5:added5:abcdee"), now.Add(2*pexInterval)); err == nil || tor.stats.pexBad != 1 {
		t.Fatalf("malformed: %v, %+v", err, tor.stats)
	}
	for a := range tor.known {
		if c := pexClassify(a.Addr()); c != classPublic {
			t.Errorf("candidate %v of class %d from a public source", a, c)
		}
	}

	// PEX candidates wait for the DHT's.
	dhtCand := netip.MustParseAddrPort("127.0.199.1:6881")
	tor.addCandidate(dhtCand, netip.MustParseAddrPort("127.0.199.2:6881"), now)
	if got := tor.dialable(now, 1); len(got) != 1 || got[0] != dhtCand {
		t.Errorf("dialable: %v, want the DHT's %v first", got, dhtCand)
	}
}

// Hostile peers through sockets: one floods PEX (more contacts than a
// message may hold, one victim on many ports, private and loopback hosts
// from a public address, message after message), others send ut_pex that
// does not parse. Each is bounded and counted; the flooder is dropped for
// the flood, the malformed senders for their messages; the download from
// an honest seeder and an honest PEX peer's contacts are unaffected.
func TestPexHostile(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	ih := mi.Info.InfoHash
	lnG := listenTCP(t, "127.0.194.50:0")
	g := addrOf(lnG.Addr())
	runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: src, Listener: lnG, NoDownload: true})

	var mu sync.Mutex
	dialed := make(map[netip.AddrPort]bool)
	dial := func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
		mu.Lock()
		dialed[a] = true
		mu.Unlock()
		if a != g {
			return nil, errors.New("not dialled in this test")
		}
		return boundDial("127.0.194.1")(ctx, a)
	}
	lnN := listenTCP(t, "127.0.194.1:0")
	dst := t.TempDir()
	n, _ := runTorrent(t, Config{InfoHash: ih, Info: mi.Info, Dir: dst, Listener: lnN, Peers: []netip.AddrPort{g},
		Dial: dial, classify: pexClassify, MaxDownloadRate: 256 << 10})
	nAddr := addrOf(lnN.Addr())

	ip := netip.MustParseAddr
	victim := ip("127.0.194.9")
	f := dialPex(t, "127.0.194.2", nAddr, ih, 0)
	theirs, err := f.TheirPexID(10 * time.Second)
	if err != nil || theirs != extPexID {
		t.Fatalf("their ut_pex id %d, %v", theirs, err)
	}
	gone := make(chan error, 1)
	go func() { gone <- f.Drain() }()
	var first []wire.PexPeer
	first = append(first, adversary.Ports(victim, 1000, 30)...)
	first = append(first, adversary.Hosts(ip("127.0.192.1"), 6881, 10)...)
	first = append(first, adversary.Hosts(ip("127.0.0.2"), 6881, 10)...)
	first = append(first, adversary.Hosts(ip("127.0.196.1"), 6881, 60)...)
	if err := f.SendPex(theirs, first, nil); err != nil {
		t.Fatal(err)
	}
	sent, _ := f.FloodPex(theirs, 200, adversary.Ports(victim, 2000, 60))
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatalf("the flooder, %d messages sent, is still connected", sent+1)
	}

	for _, bad := range adversary.MalformedPex {
		m := dialPex(t, "127.0.194.3", nAddr, ih, 0)
		if err := m.SendRawPex(extPexID, bad); err != nil {
			t.Fatal(err)
		}
		_ = m.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := m.Drain(); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%q: still connected", bad)
		}
	}

	h := dialPex(t, "127.0.194.4", nAddr, ih, 0)
	if err := h.SendPex(extPexID, adversary.Hosts(ip("127.0.197.1"), 6881, 5), nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the honest peer's contacts taken", func() bool {
		return stats(t, n).PexAdded == pexPerIP+50+5
	})
	waitDone(t, n, 60*time.Second)
	sameTree(t, src, dst, "content")

	s := stats(t, n)
	if s.PexReceived != 2 || s.PexEarly != pexMaxEarly+1 || s.PexBad != len(adversary.MalformedPex) ||
		s.PexIgnored != 30-pexPerIP+10+10+10 || s.Banned != 0 {
		t.Errorf("stats: %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	victimDials := 0
	for a := range dialed {
		switch {
		case a.Addr() == victim:
			victimDials++
		case pexClassify(a.Addr()) != classPublic:
			t.Errorf("dialled %v, named by a public peer", a)
		}
	}
	if victimDials > pexPerIP {
		t.Errorf("dialled %d ports of the victim, bound %d", victimDials, pexPerIP)
	}
}

// A message drops at most pexMaxDropped; the rest go in the next, an
// interval later.
func TestPexMaxDroppedSent(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer b.Close()
	c := newConn(a, wire.Handshake{}, false, wire.MaxMessageLen(0))
	defer c.close(nil)
	r := &peerState{c: c, extPex: adversary.PexID, pexTold: make(map[netip.AddrPort]bool)}
	tor.peers[c] = r
	const gone = pexMaxDropped + 10
	for _, pp := range adversary.Hosts(netip.MustParseAddr("10.0.0.1"), 6881, gone) {
		r.pexTold[pp.Addr] = true
	}
	now := time.Now()
	dropped := func() int {
		select {
		case om := <-c.out:
			p, err := wire.ParsePex(om.b[6:]) // length, id 20, extended id
			if err != nil {
				t.Fatal(err)
			}
			return len(p.Dropped)
		default:
			return -1
		}
	}
	tor.sendPex(now)
	if n := dropped(); n != pexMaxDropped {
		t.Fatalf("first message drops %d, bound %d", n, pexMaxDropped)
	}
	tor.sendPex(now.Add(pexInterval - time.Millisecond))
	if n := dropped(); n != -1 {
		t.Fatalf("a message %v after the last", pexInterval-time.Millisecond)
	}
	tor.sendPex(now.Add(pexInterval))
	if n := dropped(); n != gone-pexMaxDropped || len(r.pexTold) != 0 {
		t.Fatalf("second message drops %d, %d left", n, len(r.pexTold))
	}
}
