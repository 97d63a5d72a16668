package peer

import (
	"context"
	"crypto/sha1"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"node/internal/adversary"
	"node/metadata"
	"node/peer/wire"
)

// magnetUnderTest runs a torrent with only the info-hash, listening on ip.
func magnetUnderTest(t *testing.T, ip string, ih metadata.InfoHash) (*Torrent, netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	tor, _ := runTorrent(t, Config{InfoHash: ih, Dir: t.TempDir(), Listener: ln})
	return tor, addrOf(ln.Addr())
}

// dialAdversary connects a raw peer from ip to addr.
func dialAdversary(t *testing.T, ip string, addr netip.AddrPort, ih metadata.InfoHash) *adversary.Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	p, err := adversary.DialPeer(ctx, netip.MustParseAddr(ip), addr, ih, adversary.RandomID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// serveAsync runs p.ServeMetadata in the background; first is closed at
// the first request, which is only made once the claim was taken in.
func serveAsync(t *testing.T, p *adversary.Peer, size int, serve adversary.MetadataServer) (first chan struct{}) {
	first = make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.ServeMetadata(size, func(piece int) []byte {
			once.Do(func() { close(first) })
			return serve(piece)
		}, 30*time.Second)
	}()
	t.Cleanup(func() {
		p.Close()
		<-done
	})
	return first
}

func waitChan(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

func waitMetadata(t *testing.T, tor *Torrent, d time.Duration) Stats {
	t.Helper()
	select {
	case <-tor.Metadata():
	case <-time.After(d):
		s, _ := tor.Stats(context.Background())
		t.Fatalf("no metadata after %v: %+v", d, s)
	}
	s, err := tor.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// One peer that claims a metadata_size one byte too
// large, whatever it then does with requests and whether it comes first or
// second, neither blocks the fetch nor gets the honest seeder dropped.
func TestMetadataSizeLiar(t *testing.T) {
	src := t.TempDir()
	info := makeContent(t, src, "content", map[string]int{"f": 100_000}, 16<<10).Info
	size := len(info.Raw)
	for i, tc := range []struct {
		name       string
		serve      adversary.MetadataServer
		liarFirst  bool
		liarBanned bool
	}{
		{"first, rejects", adversary.RejectMetadata(), true, false},
		{"first, silent", adversary.SilentMetadata(), true, false},
		{"first, junk", adversary.JunkMetadata(size + 1), true, true},
		{"any order, rejects", adversary.RejectMetadata(), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subnet := byte(90 + i)
			tor, addr := magnetUnderTest(t, netip.AddrFrom4([4]byte{127, 0, subnet, 1}).String(), info.InfoHash)
			liar := dialAdversary(t, netip.AddrFrom4([4]byte{127, 0, subnet, 10}).String(), addr, info.InfoHash)
			first := serveAsync(t, liar, size+1, tc.serve)
			if tc.liarFirst {
				// Its claim is in before the seeder connects.
				waitChan(t, first, 5*time.Second, "request to the liar")
			}
			seedLn, err := net.Listen("tcp4", netip.AddrFrom4([4]byte{127, 0, subnet, 3}).String()+":0")
			if err != nil {
				t.Fatal(err)
			}
			runTorrent(t, Config{InfoHash: info.InfoHash, Info: info, Dir: src, Listener: seedLn, Peers: []netip.AddrPort{addr}})
			s := waitMetadata(t, tor, 15*time.Second)
			if sha1.Sum(tor.Info().Raw) != info.InfoHash {
				t.Fatal("wrong metadata")
			}
			if want := map[bool]int{true: 1, false: 0}[tc.liarBanned]; s.Banned != want {
				t.Fatalf("banned %d, want %d: %+v", s.Banned, want, s)
			}
		})
	}
}

// multiPieceInfo is an info dict of npieces 16 KiB pieces (hashes of
// zeros), whose metadata spans several metadata pieces.
func multiPieceInfo(t *testing.T, npieces int) *metadata.Info {
	t.Helper()
	raw, err := bencodeMarshal(struct {
		Length      int64  `bencode:"length"`
		Name        string `bencode:"name"`
		PieceLength int64  `bencode:"piece length"`
		Pieces      string `bencode:"pieces"`
	}{int64(npieces) << 14, "many", 1 << 14, string(make([]byte, 20*npieces))})
	if err != nil {
		t.Fatal(err)
	}
	info, err := metadata.ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// after answers with serve once gate is closed.
func after(t *testing.T, gate <-chan struct{}, serve adversary.MetadataServer) adversary.MetadataServer {
	return func(piece int) []byte {
		select {
		case <-gate:
		case <-time.After(10 * time.Second):
			t.Error("gate not opened")
		}
		return serve(piece)
	}
}

// Junk for a metadata piece from a peer that was never
// asked for it is ignored, so it cannot get the honest seeder banned.
func TestUnrequestedMetadataIgnored(t *testing.T) {
	info := multiPieceInfo(t, 1000) // 2 metadata pieces
	raw := info.Raw
	for i, claim := range []bool{false, true} {
		name := map[bool]string{false: "no ut_metadata", true: "claims the size"}[claim]
		t.Run(name, func(t *testing.T) {
			subnet := byte(95 + i)
			ip := func(b byte) string { return netip.AddrFrom4([4]byte{127, 0, subnet, b}).String() }
			tor, addr := magnetUnderTest(t, ip(1), info.InfoHash)
			junkSent := make(chan struct{})
			honest := dialAdversary(t, ip(2), addr, info.InfoHash)
			// Asked for both pieces, it answers only once the junk is out.
			waitChan(t, serveAsync(t, honest, len(raw), after(t, junkSent, adversary.HonestMetadata(raw))), 5*time.Second, "request to the seeder")

			junk := dialAdversary(t, ip(10), addr, info.InfoHash)
			h := wire.ExtendedHandshake{}
			if claim {
				h = adversary.MetadataHandshake(len(raw))
			}
			if err := junk.SendExtHandshake(h); err != nil {
				t.Fatal(err)
			}
			id, err := junk.TheirMetaID(5 * time.Second)
			if err != nil || id == 0 {
				t.Fatalf("their ut_metadata id %d: %v", id, err)
			}
			if err := junk.SendMetadata(id, metadata.MetadataMsg{Type: metadata.MetadataData, Piece: 0, TotalSize: len(raw)}, make([]byte, metadata.MetadataPieceSize)); err != nil {
				t.Fatal(err)
			}
			close(junkSent)

			s := waitMetadata(t, tor, 15*time.Second)
			if s.Banned != 0 || s.HashFails != 0 {
				t.Fatalf("after unrequested junk: %+v", s)
			}
		})
	}
}

// A peer that answers its own requests with junk next
// to an honest one makes the assembly fail with two contributors. Only the
// liar is banned, and the metadata arrives.
func TestMetadataJunkAnswerBansOnlyLiar(t *testing.T) {
	info := multiPieceInfo(t, 2000) // 3 metadata pieces
	raw := info.Raw
	if n := (len(raw) + metadata.MetadataPieceSize - 1) / metadata.MetadataPieceSize; n != 3 {
		t.Fatalf("%d metadata pieces", n)
	}
	ip := func(b byte) string { return netip.AddrFrom4([4]byte{127, 0, 97, b}).String() }
	tor, addr := magnetUnderTest(t, ip(1), info.InfoHash)
	honestAsked := make(chan struct{})
	liar := dialAdversary(t, ip(10), addr, info.InfoHash)
	// The liar, asked first, gets two pieces and answers once the honest
	// peer has the third: both contribute.
	waitChan(t, serveAsync(t, liar, len(raw), after(t, honestAsked, adversary.JunkMetadata(len(raw)))), 5*time.Second, "request to the liar")
	honest := dialAdversary(t, ip(2), addr, info.InfoHash)
	var once sync.Once
	serveAsync(t, honest, len(raw), func(piece int) []byte {
		once.Do(func() { close(honestAsked) })
		return adversary.HonestMetadata(raw)(piece)
	})
	waitMetadata(t, tor, 15*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := tor.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if s.Banned > 1 {
			t.Fatalf("the honest peer was banned too: %+v", s)
		}
		if s.Banned == 1 && s.Peers == 1 {
			break // the liar is gone, the honest peer is still there
		}
		if time.Now().After(deadline) {
			t.Fatalf("want the liar banned and the honest peer connected: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
