package peer

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/testutil"
	"node/internal/testutil/delayproxy"
	"node/peer/wire"
)

// echoPeer listens at ip and answers every handshake with the dialler's
// own, peer ID included: it poses as the dialler's own address. It
// counts the handshakes it answered in n.
func echoPeer(t *testing.T, ip string, n *atomic.Int32) netip.AddrPort {
	t.Helper()
	ln := listenTCP(t, ip+":0")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var buf [wire.HandshakeLen]byte
				if _, err := io.ReadFull(c, buf[:]); err == nil {
					_, _ = c.Write(buf[:])
					n.Add(1)
					_, _ = io.Copy(io.Discard, c)
				}
			}()
		}
	}()
	return addrOf(ln.Addr())
}

// Peers that answer our handshake with our own peer ID are not taken for
// ourselves, however many: our own address, which a dial there really
// reached us at, stays remembered, and they are dropped as failed dials.
func TestEchoedPeerIDNotSelf(t *testing.T) {
	ln := listenTCP(t, "127.0.246.91:0")
	// Plaintext: an echo of the start of our MSE key is no handshake,
	// and would only hold each dial until its timeout.
	tor, _ := runTorrent(t, Config{InfoHash: [20]byte{11}, Dir: t.TempDir(), Listener: ln, Encryption: EncryptOff})
	proxy, err := delayproxy.Listen("127.0.246.92:0", addrOf(ln.Addr()), delayproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	tor.post(addrsEvent{addrs: []netip.AddrPort{proxy.Addr()}})
	testutil.WaitFor(t, 10*time.Second, "the self-dial to be recognised", func() bool {
		self := false
		onLoop(t, tor, func(tt *Torrent) { self = tt.isSelf(proxy.Addr()) })
		return self
	})
	var liars []netip.AddrPort
	var answered atomic.Int32
	for i := range 2 * maxSelfAddrs {
		liars = append(liars, echoPeer(t, netip.AddrFrom4([4]byte{127, 0, 247, byte(i + 1)}).String(), &answered))
	}
	tor.post(addrsEvent{addrs: liars})
	testutil.WaitFor(t, 20*time.Second, "every echoing peer dialled", func() bool {
		if int(answered.Load()) < len(liars) {
			return false
		}
		dialing := true
		onLoop(t, tor, func(tt *Torrent) { dialing = tt.dialing > 0 })
		return !dialing
	})
	onLoop(t, tor, func(tt *Torrent) {
		if !tt.isSelf(proxy.Addr()) {
			t.Error("peers echoing our peer ID pushed our own address out")
		}
		for _, a := range liars {
			if tt.isSelf(a) {
				t.Errorf("%v, which echoed our peer ID, remembered as ourselves", a)
			}
		}
	})
}
