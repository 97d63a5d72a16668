package adversary

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
)

// TrackerAttack is what a BadTracker does with every request.
type TrackerAttack int

const (
	// TrackerSilent reads requests and never answers: an HTTP request
	// is held open until the tracker closes, a UDP packet dropped.
	TrackerSilent TrackerAttack = iota
	// TrackerClose hangs up: an HTTP connection closed before any
	// answer; a UDP packet dropped (as TrackerSilent).
	TrackerClose
	// TrackerGarbage answers with bytes that are no answer.
	TrackerGarbage
	// TrackerTruncated answers with a valid answer cut short.
	TrackerTruncated
	// TrackerOversized answers with a valid answer padded past every
	// sane size (1 MiB over HTTP, 64 KiB over UDP).
	TrackerOversized
	// TrackerWrongTx (UDP) answers every packet several times with
	// transaction IDs other than the request's, and never with its own.
	TrackerWrongTx
	// TrackerRedirectLoop (HTTP) redirects to itself through two URLs,
	// both at /announce, forever.
	TrackerRedirectLoop
	// TrackerBadLength answers with a compact peer list whose length is
	// not a multiple of the entry size.
	TrackerBadLength
	// TrackerAbsurdInterval answers honestly, with Peers, but asks for
	// an interval of 0 seconds.
	TrackerAbsurdInterval
	// TrackerPeerFlood answers with 5,000 peers at once.
	TrackerPeerFlood
	// TrackerFailure answers with a failure reason (HTTP) or an error
	// action (UDP) full of terminal escapes.
	TrackerFailure
)

// BadTracker is a tracker on loopback, HTTP and UDP, that attacks every
// announce the same way. It speaks the tracker protocols by hand.
type BadTracker struct {
	Attack TrackerAttack
	// Peers are what an answer names, where it names peers.
	Peers []netip.AddrPort

	HTTPURL, UDPURL string
	// Requests counts the requests received, both protocols.
	Requests atomic.Int64

	srv  *http.Server
	ln   net.Listener
	pc   *net.UDPConn
	wg   sync.WaitGroup
	stop chan struct{}
	once sync.Once
}

// NewBadTracker starts a BadTracker on ip (a loopback address).
func NewBadTracker(ip string, attack TrackerAttack, peers ...netip.AddrPort) (*BadTracker, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		ln.Close()
		return nil, err
	}
	b := &BadTracker{Attack: attack, Peers: peers, ln: ln, pc: pc, stop: make(chan struct{})}
	b.HTTPURL = "http://" + ln.Addr().String() + "/announce"
	b.UDPURL = "udp://" + pc.LocalAddr().String() + "/announce"
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serveHTTP)}
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.srv.Serve(ln) }()
	go func() { defer b.wg.Done(); b.serveUDP() }()
	return b, nil
}

// Close stops it, releasing requests held open.
func (b *BadTracker) Close() {
	b.once.Do(func() {
		close(b.stop)
		b.srv.Close()
		b.pc.Close()
		b.wg.Wait()
	})
}

// compact is peers in the BEP 23 form, 6 bytes each (IPv4 only).
func compact(peers []netip.AddrPort) []byte {
	var out []byte
	for _, p := range peers {
		if p.Addr().Is4() {
			out = append(out, p.Addr().AsSlice()...)
			out = binary.BigEndian.AppendUint16(out, p.Port())
		}
	}
	return out
}

// floodPeers are n distinct public-looking peers.
func floodPeers(n int) []netip.AddrPort {
	out := make([]netip.AddrPort, n)
	for i := range out {
		out[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)}), uint16(10000+i))
	}
	return out
}

func httpAnswer(interval int, peers []byte) []byte {
	return fmt.Appendf(nil, "d8:intervali%de5:peers%d:%se", interval, len(peers), peers)
}

func (b *BadTracker) serveHTTP(w http.ResponseWriter, r *http.Request) {
	b.Requests.Add(1)
	honest := httpAnswer(1800, compact(b.Peers))
	switch b.Attack {
	case TrackerSilent:
		select {
		case <-r.Context().Done():
		case <-b.stop:
		}
	case TrackerClose:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
	case TrackerGarbage:
		w.Write([]byte("<html>502 Bad Gateway\x1b[2J</html>"))
	case TrackerTruncated:
		w.Write(honest[:len(honest)-3])
	case TrackerOversized:
		pad := strings.Repeat("x", 1<<20)
		fmt.Fprintf(w, "d3:pad%d:%s8:intervali1800e5:peers%d:%se", len(pad), pad, len(compact(b.Peers)), compact(b.Peers))
	case TrackerRedirectLoop:
		// Both URLs at /announce, the one path a client asks of a
		// tracker on a local address, so the loop is what stops it.
		if q, ok := strings.CutSuffix(r.URL.RawQuery, "&loop=1"); ok {
			http.Redirect(w, r, "/announce?"+q, http.StatusFound)
		} else {
			http.Redirect(w, r, "/announce?"+r.URL.RawQuery+"&loop=1", http.StatusFound)
		}
	case TrackerBadLength:
		w.Write(httpAnswer(1800, append(compact(b.Peers), 1, 2, 3)))
	case TrackerAbsurdInterval:
		w.Write(httpAnswer(0, compact(b.Peers)))
	case TrackerPeerFlood:
		w.Write(httpAnswer(1800, compact(append(floodPeers(5000), b.Peers...))))
	case TrackerFailure:
		msg := "go away\x1b[2J\x1b]0;pwn\x07"
		fmt.Fprintf(w, "d14:failure reason%d:%se", len(msg), msg)
	}
}

func (b *BadTracker) serveUDP() {
	buf := make([]byte, 2048)
	for {
		n, from, err := b.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b.Requests.Add(1)
		if n < 16 {
			continue
		}
		action := binary.BigEndian.Uint32(buf[8:12])
		tx := binary.BigEndian.Uint32(buf[12:16])
		for _, p := range b.udpAnswers(action, tx) {
			b.pc.WriteToUDPAddrPort(p, from)
		}
	}
}

func udpHeader(action, tx uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, action), tx)
}

func udpAnnounceAnswer(tx uint32, interval uint32, peers []byte) []byte {
	p := udpHeader(1, tx)
	p = binary.BigEndian.AppendUint32(p, interval)
	p = binary.BigEndian.AppendUint32(p, 1) // leechers
	p = binary.BigEndian.AppendUint32(p, 1) // seeders
	return append(p, peers...)
}

// udpAnswers are the packets sent back for one request. Connect requests
// get an honest connection ID, except where the attack is on them too.
func (b *BadTracker) udpAnswers(action, tx uint32) [][]byte {
	if action == 0 { // connect
		switch b.Attack {
		case TrackerSilent, TrackerClose:
			return nil
		case TrackerWrongTx:
			var out [][]byte
			for i := range uint32(3) {
				out = append(out, binary.BigEndian.AppendUint64(udpHeader(0, tx+1+i), 0x1234))
			}
			return out
		}
		return [][]byte{binary.BigEndian.AppendUint64(udpHeader(0, tx), 0x1234)}
	}
	peers := compact(b.Peers)
	honest := udpAnnounceAnswer(tx, 1800, peers)
	switch b.Attack {
	case TrackerGarbage:
		return [][]byte{[]byte("garbage")}
	case TrackerTruncated:
		return [][]byte{honest[:10]}
	case TrackerOversized:
		return [][]byte{append(honest, bytes.Repeat([]byte{1, 2, 3, 4, 5, 6}, 10000)...)}
	case TrackerBadLength:
		return [][]byte{append(honest, 1, 2, 3)}
	case TrackerAbsurdInterval:
		return [][]byte{udpAnnounceAnswer(tx, 0, peers)}
	case TrackerPeerFlood:
		return [][]byte{udpAnnounceAnswer(tx, 1800, compact(append(floodPeers(1000), b.Peers...)))}
	case TrackerFailure:
		return [][]byte{append(udpHeader(3, tx), "go away\x1b[2J"...)}
	}
	return nil
}
