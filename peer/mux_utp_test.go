//go:build cgo

package peer

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"node/metadata"
	"node/peer/utp"
)

// Two torrents behind one Mux whose listeners are TCP and uTP on one
// port, fetched by peers that speak uTP alone: the seeds count the
// connections as uTP.
func TestMuxUTP(t *testing.T) {
	src, a, b := twoContents(t)
	ln := listen4(t, "127.0.52.101")
	s, err := utp.Listen("udp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m := NewMux(MuxConfig{Listeners: []net.Listener{ln, s.Listener()}})
	t.Cleanup(func() { m.Close() })
	for i, mi := range []*metadata.MetaInfo{a, b} {
		seed := seedBehind(t, m, mi, src, EncryptPrefer)
		ls := utpSocket(t, fmt.Sprintf("127.0.52.%d", 110+i))
		dst := t.TempDir()
		cfg := utpConfig(ls, mi.Info.InfoHash, mi.Info, dst)
		cfg.Peers = []netip.AddrPort{muxAddr(m)}
		leech, _ := runTorrent(t, cfg)
		waitDone(t, leech, 30*time.Second)
		sameTree(t, src, dst, mi.Info.Name)
		if st := stats(t, seed); st.UTPConns == 0 || st.TCPConns != 0 {
			t.Fatalf("seed %d: %d uTP and %d TCP connections: want uTP alone", i, st.UTPConns, st.TCPConns)
		}
	}
}
