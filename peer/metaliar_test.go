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

// Issue 9, finding 1: one peer that claims a metadata_size one byte too
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
