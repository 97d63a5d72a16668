package adversary

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/peer/wire"
)

// The flood's first handshake has three address fields of impossible
// lengths; each one after names the next addresses; a seed's bitfield is
// full.
func TestFloodAddrHintsAndPoseAsSeed(t *testing.T) {
	if h, err := wire.ParseExtendedHandshake(BogusAddrHandshake(6881)); err != nil || h.Dropped != 3 || h.P != 6881 {
		t.Fatalf("bogus handshake parses to %+v, %v", h, err)
	}
	ih := [20]byte{7, 7}
	base4, base6 := netip.MustParseAddr("127.0.233.1"), netip.MustParseAddr("::1")
	s, err := ServePeers("127.0.0.1", ih, func(p *Peer) {
		if FloodAddrHints(p, 6881, 3, base4, base6) == nil {
			_ = p.Drain()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := DialPeer(ctx, netip.MustParseAddr("127.0.0.1"), s.Addr, ih, RandomID())
	if err != nil {
		t.Fatal(err)
	}
	var v4s []netip.Addr
	n := 0
	if err := p.ReadUntil(5*time.Second, func(m wire.Message) bool {
		if m.Type != wire.Extended || m.ExtendedID != 0 {
			return false
		}
		n++
		h, err := wire.ParseExtendedHandshake(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := h.Addr4(); ok {
			v4s = append(v4s, a)
		}
		return n == 4
	}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if len(v4s) != 3 || v4s[0] != base4 || v4s[2] != netip.MustParseAddr("127.0.233.3") {
		t.Fatalf("named %v", v4s)
	}

	s2, err := ServePeers("127.0.0.1", ih, func(p *Peer) { _ = PoseAsSeed(p, 10, 6881) })
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	p, err = DialPeer(ctx, netip.MustParseAddr("127.0.0.1"), s2.Addr, ih, RandomID())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ReadUntil(5*time.Second, func(m wire.Message) bool {
		return m.Type == wire.Bitfield && wire.ValidBitfield(m.Bitfield, 10) && wire.Bits(m.Bitfield).Has(9)
	}); err != nil {
		t.Fatal(err)
	}
}
