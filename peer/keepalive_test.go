package peer

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"node/internal/adversary"
	"node/peer/wire"
)

// A seed's first messages (bitfield or have all, extended handshake) are
// followed by a keep-alive after earlyKeepAlive when nothing else is sent:
// Transmission 3.00 parses bytes that came in one read with our handshake
// only once more data comes, and without it would wait for the keep-alive
// a full keepAliveEvery later.
func TestEarlyKeepAlive(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 100_000}, 16<<10)
	ln := listen4(t, "127.0.125.30")
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: ln, NoDownload: true,
		Dial: refuseDial, Encryption: EncryptOff})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := adversary.DialPeer(ctx, netip.MustParseAddr("127.0.125.130"), addrOf(ln.Addr()), mi.Info.InfoHash, adversary.RandomID())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Conn.Close()
	// Well below keepAliveEvery: only the early keep-alive can come.
	if err := p.ReadUntil(keepAliveEvery/3, func(m wire.Message) bool { return m.KeepAlive }); err != nil {
		t.Fatalf("no keep-alive after our first messages: %v", err)
	}
}
