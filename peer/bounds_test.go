package peer

import (
	"net/netip"
	"testing"
	"time"
)

// However many addresses arrive (a DHT can be made to return a flood),
// a torrent keeps at most maxKnownAddrs candidates (making room for new
// ones by dropping the least promising) and dials at most MaxDials at
// once.
func TestCandidateAndDialBounds(t *testing.T) {
	var flood []netip.AddrPort
	for i := 0; i < 3*maxKnownAddrs; i++ {
		// 127.0.78.x: nothing listens there, so every dial fails.
		flood = append(flood, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 78, byte(i%250 + 1)}), uint16(1024+i)))
	}
	ih := [20]byte{1}
	tor, _ := runTorrent(t, Config{InfoHash: ih, Dir: t.TempDir(), Peers: flood, MaxDials: 5})
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		s, err := tor.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if s.Known > maxKnownAddrs || s.Known < maxKnownAddrs/2 {
			t.Fatalf("%d candidates kept, bound is %d", s.Known, maxKnownAddrs)
		}
		if s.Dialing > 5 {
			t.Fatalf("%d dials at once, bound is 5", s.Dialing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
