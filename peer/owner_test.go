package peer

import (
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
)

// Subnets 127.0.240-241.x belong to these tests.

// ownPiece makes a piece in progress that tor asked of the peer at a only
// that peer's to fetch, as after a hash failure with several senders, and
// returns it.
func ownPiece(t *testing.T, tor *Torrent, a netip.AddrPort) int {
	t.Helper()
	piece := -1
	testutil.WaitFor(t, 10*time.Second, "requests out to the peer", func() bool {
		onLoop(t, tor, func(tt *Torrent) {
			ps := tt.peerAt(a)
			if ps == nil {
				return
			}
			for key := range ps.requests {
				pc := tt.pk.inProgress[key.piece]
				pc.exclusive, pc.owner = true, ps
				piece = key.piece
				return
			}
		})
		return piece >= 0
	})
	return piece
}

// A piece only one peer may fetch (after a hash failure), whose peer then
// sits on its requests: once they are cancelled the piece is open to
// others, and the download completes from the honest seeder.
func TestExclusivePieceFreedWhenOwnerStalls(t *testing.T) {
	t.Parallel()
	src, info, _, honest := fastSwarm(t, "127.0.240.1")
	srv, _ := serveLiar(t, "127.0.240.2", info.InfoHash, true, func(p *adversary.Peer) error {
		return adversary.HoldRequests(p, nil)
	})
	dst := t.TempDir()
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: dst, Peers: []netip.AddrPort{srv.Addr}})
	ownPiece(t, tor, srv.Addr)
	onLoop(t, tor, func(tt *Torrent) { tt.addCandidate(honest, netip.AddrPort{}, time.Now()) })
	waitDone(t, tor, 30*time.Second)
	sameTree(t, src, dst, "content")
	if s := stats(t, tor); s.Stalls == 0 {
		t.Fatalf("stats %+v: the silent peer's requests were never cancelled", s)
	}
}

// A fast peer that owns a piece and chokes us (the piece not allowed
// fast) no longer owns it: it will not serve it until it unchokes.
func TestExclusivePieceFreedOnFastChoke(t *testing.T) {
	_, info, _, _ := fastSwarm(t, "127.0.240.11")
	choke := make(chan struct{})
	srv, _ := serveLiar(t, "127.0.240.12", info.InfoHash, true, func(p *adversary.Peer) error {
		return adversary.HoldRequests(p, choke)
	})
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Peers: []netip.AddrPort{srv.Addr}})
	piece := ownPiece(t, tor, srv.Addr)
	close(choke)
	testutil.WaitFor(t, 10*time.Second, "the choke", func() bool {
		choked := false
		onLoop(t, tor, func(tt *Torrent) {
			if ps := tt.peerAt(srv.Addr); ps != nil {
				choked = ps.peerChoking
			}
		})
		return choked
	})
	onLoop(t, tor, func(tt *Torrent) {
		if pc := tt.pk.inProgress[piece]; pc != nil && pc.owner != nil {
			t.Errorf("piece %d still owned by the peer that choked us", piece)
		}
	})
}

// An honest fast peer that answers every request, but only after two of
// our stall times: we cancel its requests and must not ask it again for
// those blocks before it answers the cancels, or its one answer per
// request would leave answers we did not ask for, and we would drop an
// honest peer.
func TestSlowFastPeerNotDroppedAfterStalls(t *testing.T) {
	t.Parallel()
	_, info, _, _ := fastSwarm(t, "127.0.240.21")
	slow := adversary.NewSlowAnswerer()
	hold := 2*minRequestTimeout + time.Second
	srv, ended := serveLiar(t, "127.0.240.22", info.InfoHash, true, func(p *adversary.Peer) error {
		return slow.HoldThenReject(p, hold)
	})
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(), Peers: []netip.AddrPort{srv.Addr}})
	select {
	case <-slow.Answered:
	case err := <-ended:
		t.Fatalf("the slow peer was dropped after its answers (%d requests, %d cancels, %d rejects): %v; stats %+v",
			slow.Requests.Load(), slow.Cancels.Load(), slow.Rejects.Load(), err, stats(t, tor))
	case <-time.After(hold + 10*time.Second):
		t.Fatal("the slow peer got no answer")
	}
	if slow.Cancels.Load() == 0 {
		t.Fatalf("no cancel reached the slow peer: %d requests", slow.Requests.Load())
	}
	onLoop(t, tor, func(tt *Torrent) {
		if tt.peerAt(srv.Addr) == nil {
			t.Error("the slow peer is gone")
		}
	})
}

// The cancelled requests kept per peer are bounded: a fast peer owing
// more answers than maxCancelled is dropped; another forgets its oldest.
func TestCancelledBound(t *testing.T) {
	_, info, _, _ := fastSwarm(t, "127.0.240.31")
	fastSrv, fastEnded := serveLiar(t, "127.0.240.32", info.InfoHash, true, func(p *adversary.Peer) error {
		return adversary.HoldRequests(p, nil)
	})
	plainSrv, _ := serveLiar(t, "127.0.240.33", info.InfoHash, false, func(p *adversary.Peer) error {
		return p.Drain()
	})
	tor, _ := runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: t.TempDir(),
		Peers: []netip.AddrPort{fastSrv.Addr, plainSrv.Addr}})
	testutil.WaitFor(t, 10*time.Second, "both peers connected", func() bool { return stats(t, tor).Peers == 2 })
	now := time.Now()
	onLoop(t, tor, func(tt *Torrent) {
		for _, a := range []netip.AddrPort{fastSrv.Addr, plainSrv.Addr} {
			ps := tt.peerAt(a)
			for i := range maxCancelled + 10 {
				ps.cancelled[blockKey{1 << 20, int64(i)}] = now.Add(time.Duration(i))
			}
		}
		tt.expireRequests(now)
		if ps := tt.peerAt(fastSrv.Addr); ps != nil {
			t.Errorf("a fast peer owing %d answers is kept", len(ps.cancelled))
		}
		ps := tt.peerAt(plainSrv.Addr)
		if ps == nil {
			t.Fatal("the plain peer was dropped")
		}
		if len(ps.cancelled) > maxCancelled {
			t.Errorf("%d cancelled requests kept, bound %d", len(ps.cancelled), maxCancelled)
		}
		if _, ok := ps.cancelled[blockKey{1 << 20, 0}]; ok {
			t.Error("the oldest cancelled request was kept")
		}
	})
	waitEnded(t, fastEnded, "a fast peer that answers no cancel")
}
