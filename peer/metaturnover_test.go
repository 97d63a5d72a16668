package peer

import (
	"context"
	"crypto/sha1"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/metadata"
)

// startTorrent runs a torrent changed by tweak before it starts, and
// returns a stop that ends it and waits: after stop the loop's state may
// be read.
func startTorrent(t *testing.T, cfg Config, tweak func(*Torrent)) (*Torrent, func()) {
	t.Helper()
	tor, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(tor)
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		_ = tor.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-finished
	}
	t.Cleanup(stop)
	return tor, stop
}

// padInfo is a valid one-file info dictionary made n metadata pieces long
// by a key nobody reads.
func padInfo(t *testing.T, n int) []byte {
	t.Helper()
	raw := rawInfo(t, "padded", []string{"f"})
	pad := (n-1)*metadata.MetadataPieceSize + 100
	// "x" sorts after every key rawInfo writes: it goes last, before
	// the dictionary's closing "e".
	key := fmt.Sprintf("1:x%d:%s", pad, strings.Repeat("x", pad))
	out := append([]byte{}, raw[:len(raw)-1]...)
	return append(append(out, key...), 'e')
}

// Before the metadata, every slot is taken (by the one peer that has the
// metadata and by squatters that offer ut_metadata but never answer)
// and candidates wait. The source answers a piece only every so often,
// for longer in all than turnover's starved grace: the pieces it sends
// count, so turnover makes room among the squatters and never closes the
// source, and the metadata arrives.
func TestSlowMetadataSourceIsNotTurnedOver(t *testing.T) {
	const pieces = 8
	raw := padInfo(t, pieces)
	ih := metadata.InfoHash(sha1.Sum(raw))
	if _, err := metadata.ParseInfo(raw); err != nil {
		t.Fatal(err)
	}
	src, err := adversary.ServePeers("127.0.94.2", ih, func(p *adversary.Peer) {
		_ = p.ServeMetadata(len(raw), adversary.SlowMetadata(raw, 400*time.Millisecond), time.Minute)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	ln := listenTCP(t, "127.0.94.1:0")
	const slots = 4
	// The squatters claim a size of their own, so that the pieces they
	// are asked for and never send are not the source's.
	squatSize := len(raw) / 2
	tor, _ := startTorrent(t, Config{InfoHash: ih, Dir: t.TempDir(), Listener: ln, MaxConns: slots,
		Peers: []netip.AddrPort{src.Addr}}, func(tor *Torrent) {
		// Scaled down, in the defaults' proportions; the source sends
		// a piece three times as often as the starved grace.
		tor.turn = turnoverTimes{every: 100 * time.Millisecond, idle: 300 * time.Millisecond,
			starved: 1200 * time.Millisecond, cooldown: time.Minute}
	})
	testutil.WaitFor(t, 10*time.Second, "the source was not connected", func() bool { return stats(t, tor).Peers == 1 })

	for i := range slots - 1 {
		p, err := adversary.DialPeer(t.Context(), netip.AddrFrom4([4]byte{127, 0, 94, byte(10 + i)}), addrOf(ln.Addr()), ih, adversary.RandomID())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		go func() { _ = p.ServeMetadata(squatSize, adversary.SilentMetadata(), time.Minute) }()
	}
	testutil.WaitFor(t, 10*time.Second, "the squatters did not take the other slots", func() bool { return stats(t, tor).Peers == slots })

	var waiting []netip.AddrPort
	for i := range slots - 1 {
		s, err := adversary.ServePeers(fmt.Sprintf("127.0.94.%d", 20+i), ih, func(p *adversary.Peer) { _ = p.ServeMetadata(squatSize, adversary.SilentMetadata(), time.Minute) })
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		waiting = append(waiting, s.Addr)
	}
	if !tor.post(addrsEvent{addrs: waiting}) {
		t.Fatal("torrent stopped")
	}

	select {
	case <-tor.Metadata():
	case <-time.After(20 * time.Second):
		t.Fatalf("no metadata after 20s (source connected %d times): %+v", src.Accepted(), stats(t, tor))
	}
	if n := src.Accepted(); n != 1 {
		t.Fatalf("the source was connected %d times, want once: it was turned over", n)
	}
}

// A peer we asked for metadata has turnover's starved grace from our
// request, however long it gave nothing before (the fetch may have just
// chosen it as the one peer it trusts); but only from the first request it
// leaves unanswered, so asking a staller again does not keep it.
func TestTurnoverGraceFromMetadataRequest(t *testing.T) {
	tor, err := New(Config{InfoHash: [20]byte{0x14, 2}, Dir: t.TempDir(), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	// turnover dials the candidates it makes room for: end those dials.
	t.Cleanup(func() { tor.cancel(); tor.wg.Wait() })
	tor.fetch = metadata.NewFetch(tor.ih)
	now := time.Now()
	peer := func(ip string) *peerState {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		c := &conn{nc: a, addr: netip.MustParseAddrPort(ip + ":6881"), out: make(chan outMsg, 1), closed: make(chan struct{})}
		ps := &peerState{c: c, extMeta: 1, usefulAt: now.Add(-2 * turnoverStarved)}
		tor.peers[c] = ps
		return ps
	}
	asked, other := peer("127.0.96.1"), peer("127.0.96.2")
	tor.metadataAsked(asked, now.Add(-turnoverStarved/2))
	tor.addCandidate(netip.MustParseAddrPort("127.0.96.3:6881"), netip.AddrPort{}, now)
	tor.addCandidate(netip.MustParseAddrPort("127.0.96.4:6881"), netip.AddrPort{}, now)

	tor.turnover(now)
	if _, ok := tor.peers[other.c]; ok {
		t.Fatal("a peer that gave nothing for twice the starved grace was kept")
	}
	if _, ok := tor.peers[asked.c]; !ok {
		t.Fatal("the peer we asked for metadata was turned over before its grace from the request")
	}

	// Asked again, without having answered: the grace still runs from
	// the first request.
	later := now.Add(turnoverStarved)
	tor.metadataAsked(asked, later)
	peer("127.0.96.5").usefulAt = later
	tor.turnover(later)
	if _, ok := tor.peers[asked.c]; ok {
		t.Fatal("a peer that leaves our metadata requests unanswered kept its slot past the starved grace")
	}
}
