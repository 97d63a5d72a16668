package peer

import (
	"net"
	"net/netip"
	"testing"

	"node/peer/wire"
)

// BEP 3 sends a bitfield once: a peer that sends a second one, before the
// metadata is known or after, is dropped rather than copied from again.
func TestSecondBitfieldDropsPeer(t *testing.T) {
	src := t.TempDir()
	info := makeContent(t, src, "content", map[string]int{"f": 100_000}, 16<<10).Info
	bf := wire.NewBits(info.NumPieces())
	bf.Set(0)
	for _, magnet := range []bool{false, true} {
		name := "with metadata"
		if magnet {
			name = "magnet"
		}
		t.Run(name, func(t *testing.T) {
			fp := startFakePeer(t, "127.0.153.1", info.InfoHash, func(c net.Conn) {
				send(c, &wire.Message{Type: wire.Bitfield, Bitfield: bf})
				send(c, &wire.Message{Type: wire.Bitfield, Bitfield: bf})
			})
			cfg := Config{InfoHash: info.InfoHash, Dir: t.TempDir(), Peers: []netip.AddrPort{fp.addr}}
			if !magnet {
				cfg.Info = info
			}
			runTorrent(t, cfg)
			fp.waitHungUp(t)
		})
	}
}
