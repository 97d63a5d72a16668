package adversary

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/metadata"
	"node/peer/wire"
)

// A liar claims the size it is given and rejects what it is asked.
func TestLieAboutMetadataSize(t *testing.T) {
	ih := [20]byte{4, 5, 6}
	s, err := ServePeers("127.0.0.1", ih, func(p *Peer) { _ = LieAboutMetadataSize(p, 12345) })
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
	defer p.Close()
	if err := p.SendExtHandshake(metadataHandshake(0)); err != nil {
		t.Fatal(err)
	}
	var theirs int
	if err := p.ReadUntil(5*time.Second, func(m wire.Message) bool {
		if m.Type != wire.Extended || m.ExtendedID != 0 {
			return false
		}
		h, err := wire.ParseExtendedHandshake(m.Payload)
		if err != nil || h.MetadataSize != 12345 {
			t.Errorf("handshake %+v, %v", h, err)
		}
		theirs = h.M[wire.ExtMetadataName]
		return true
	}); err != nil {
		t.Fatal(err)
	}
	req, _ := metadata.MetadataMsg{Type: metadata.MetadataRequest, Piece: 0}.Append(nil, nil)
	if err := p.sendExt(theirs, req); err != nil {
		t.Fatal(err)
	}
	if err := p.ReadUntil(5*time.Second, func(m wire.Message) bool {
		mm, ok := metadataMsg(m)
		return ok && mm.Type == metadata.MetadataReject && mm.Piece == 0
	}); err != nil {
		t.Fatalf("no reject: %v", err)
	}
}

// One IP holds as many connections as it dials, and lets them go when
// told to.
func TestSquatSlots(t *testing.T) {
	ih := [20]byte{7}
	s, err := ServePeers("127.0.0.1", ih, func(p *Peer) { _ = p.Drain() })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan int, 1)
	go func() { held <- SquatSlots(ctx, netip.MustParseAddr("127.0.0.1"), s.Addr, ih, 5, time.Second) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Accepted() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the condition, with a deadline
	}
	cancel()
	if n := <-held; n != 5 || s.Accepted() != 5 {
		t.Fatalf("held %d, accepted %d, want 5", n, s.Accepted())
	}
}

// Flood packets are garbage or queries; a mix of only pings gives pings.
func TestFloodPacket(t *testing.T) {
	for range 100 {
		if b := FloodPacket([20]byte{1}, FloodMix{}); len(b) == 0 || b[0] != 'd' {
			t.Fatalf("ping-only mix gave %q", b)
		}
	}
	for range 100 {
		if b := FloodPacket([20]byte{1}, DefaultFloodMix); len(b) == 0 {
			t.Fatal("empty packet")
		}
	}
}
