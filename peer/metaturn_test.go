package peer

import (
	"crypto/sha1"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"node/internal/adversary"
)

// testMetaRetry stands for the fetch's 20 s retry time, so that the
// tests that wait it out stay fast.
const testMetaRetry = time.Second

// magnetShortRetry is magnetUnderTest with the fetch's retry time
// shortened to testMetaRetry.
func magnetShortRetry(t *testing.T, ip string, ih [20]byte) (*Torrent, netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	tor, _ := runTorrent(t, Config{InfoHash: ih, Dir: t.TempDir(), Listener: ln, metaRetryAfter: testMetaRetry})
	return tor, addrOf(ln.Addr())
}

// After a failed assembly the metadata is fetched one peer at a
// time. A liar whose turn it is cannot keep it: not by sending its BEP 10
// handshake again and again (each once asked it again at once), nor by
// taking ut_metadata back (it was then never asked again, so never seen
// to stall). The honest peer gets its turn and the metadata arrives.
func TestMetadataTurnHog(t *testing.T) {
	info := multiPieceInfo(t, 2000) // 3 metadata pieces
	raw := info.Raw
	size := len(raw)
	for i, withdraw := range []bool{false, true} {
		name := map[bool]string{false: "renews its handshake", true: "takes ut_metadata back"}[withdraw]
		t.Run(name, func(t *testing.T) {
			ip := func(b byte) string { return netip.AddrFrom4([4]byte{127, 0, byte(131 + i), b}).String() }
			tor, addr := magnetShortRetry(t, ip(1), info.InfoHash)

			// The liar, first, is asked for two pieces.
			liar := dialAdversary(t, ip(10), addr, info.InfoHash)
			claim := adversary.MetadataHandshake(size)
			if err := liar.SendExtHandshake(claim); err != nil {
				t.Fatal(err)
			}
			id, first, err := liar.MetadataRequests(2, 5*time.Second, 0, claim, 0)
			if err != nil {
				t.Fatal(err)
			}

			// The honest peer answers its first request (the third
			// piece) at once, the rest only once the liar has done its
			// worst: should it have the first turn, it passes it on.
			gate := make(chan struct{})
			asked := make(chan struct{})
			var mu sync.Mutex
			n := 0
			honest := dialAdversary(t, ip(2), addr, info.InfoHash)
			serveAsync(t, honest, size, func(piece int) []byte {
				mu.Lock()
				n++
				firstReq := n == 1
				mu.Unlock()
				if firstReq {
					close(asked)
				} else {
					<-gate
				}
				return adversary.HonestMetadata(raw)(piece)
			})
			waitChan(t, asked, 5*time.Second, "request to the honest peer")

			// Junk for the liar's two pieces fails the assembly: from now
			// on one peer at a time. The liar renews its handshake to
			// be the first to ask, and waits for its turn.
			if err := liar.SendJunk(id, size, first...); err != nil {
				t.Fatal(err)
			}
			id, turn, err := liar.MetadataRequests(2, 10*testMetaRetry, id, claim, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if withdraw {
				if err := liar.SendExtHandshake(adversary.WithdrawHandshake(size)); err != nil {
					t.Fatal(err)
				}
			}
			// It answers its turn's pieces with junk and sits on the
			// request that follows, renewing its handshake.
			if err := liar.SendJunk(id, size, turn...); err != nil {
				t.Fatal(err)
			}
			close(gate)
			renew := claim
			if withdraw {
				renew = adversary.WithdrawHandshake(size)
			}
			defer liar.RenewHandshake(renew, 10*time.Millisecond)()
			go func() { _ = liar.Drain() }()

			s := waitMetadata(t, tor, 10*testMetaRetry)
			if sha1.Sum(tor.Info().Raw) != info.InfoHash {
				t.Fatal("wrong metadata")
			}
			if s.Banned > 1 {
				t.Fatalf("the honest peer was banned too: %+v", s)
			}
		})
	}
}

// Four peers from four IPs, each claiming a wrong metadata_size
// of its own and refusing every request, come before the one honest
// seeder: the fifth size, the true one, is still fetched once theirs have
// delivered nothing for the retry time.
func TestMetadataSizeCrowdOut(t *testing.T) {
	src := t.TempDir()
	info := makeContent(t, src, "content", map[string]int{"f": 100_000}, 16<<10).Info
	size := len(info.Raw)
	ip := func(b byte) string { return netip.AddrFrom4([4]byte{127, 0, 133, b}).String() }
	tor, addr := magnetShortRetry(t, ip(1), info.InfoHash)
	for i := range 4 {
		liar := dialAdversary(t, ip(byte(10+i)), addr, info.InfoHash)
		waitChan(t, serveAsync(t, liar, size+1+i, adversary.RejectMetadata()), 5*time.Second, "request to a liar")
	}
	seedLn, err := net.Listen("tcp4", ip(3)+":0")
	if err != nil {
		t.Fatal(err)
	}
	runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: seedLn, Peers: []netip.AddrPort{addr}})
	waitMetadata(t, tor, 10*testMetaRetry)
	if sha1.Sum(tor.Info().Raw) != info.InfoHash {
		t.Fatal("wrong metadata")
	}
}
