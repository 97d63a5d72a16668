package peer

import (
	"io"
	"net"
	"testing"
	"time"

	tu "node/internal/testutil"
	"node/peer/wire"
)

// A seed with no peer ticks every idleTickEvery, not every tickEvery; a
// peer's connection brings the fast tick back at once, and its leaving
// the slow one.
func TestIdleTick(t *testing.T) {
	t.Parallel()
	if idleTickEvery <= tickEvery {
		t.Fatalf("idleTickEvery %v is no slower than tickEvery %v", idleTickEvery, tickEvery)
	}
	src := t.TempDir()
	mi := makeContent(t, src, "idle", map[string]int{"f.bin": 64 << 10}, 16<<10)
	ln, err := net.Listen("tcp4", "127.0.236.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true,
		Dial: refuseDial, Encryption: EncryptOff})
	waitDone(t, seed, 10*time.Second)
	period := func() time.Duration {
		var p time.Duration
		onLoop(t, seed, func(t *Torrent) { p = t.tickPeriod })
		return p
	}
	tu.WaitFor(t, 10*time.Second, "the idle tick", func() bool { return period() == idleTickEvery })

	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hs := wire.Handshake{Reserved: wire.DefaultReserved(), InfoHash: mi.Info.InfoHash, PeerID: [20]byte{'-', 'X', 'X'}}
	if _, err := c.Write(hs.Append(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, wire.HandshakeLen)); err != nil {
		t.Fatal(err)
	}
	tu.WaitFor(t, 10*time.Second, "the fast tick with a peer", func() bool { return period() == tickEvery })
	c.Close()
	tu.WaitFor(t, 10*time.Second, "the idle tick once the peer left", func() bool { return period() == idleTickEvery })
}
