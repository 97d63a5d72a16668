package tracker

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
)

// fakeHTTP is an honest HTTP tracker on loopback that records the
// announces it gets.
type fakeHTTP struct {
	*httptest.Server
	mu       sync.Mutex
	requests []url.Values
	interval int
	peers    []netip.AddrPort
	// trackerID, if set, is the "tracker id" of the answers.
	trackerID string
}

func newFakeHTTP(t *testing.T, peers ...netip.AddrPort) *fakeHTTP {
	f := &fakeHTTP{interval: 1800, peers: peers}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeHTTP) announceURL() string { return f.URL + "/announce" }

func (f *fakeHTTP) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.requests = append(f.requests, q)
	iv, id := f.interval, f.trackerID
	f.mu.Unlock()
	var p4, p6 []byte
	for _, p := range f.peers {
		if p.Addr().Is4() {
			p4 = append(append(p4, p.Addr().AsSlice()...), byte(p.Port()>>8), byte(p.Port()))
		} else {
			p6 = append(append(p6, p.Addr().AsSlice()...), byte(p.Port()>>8), byte(p.Port()))
		}
	}
	if r.URL.Path == "/scrape" {
		ih := q.Get("info_hash")
		fmt.Fprintf(w, "d5:filesd20:%sd8:completei3e10:downloadedi7e10:incompletei5eeee", ih)
		return
	}
	fmt.Fprintf(w, "d8:completei1e10:incompletei2e8:intervali%de5:peers%d:%s6:peers6%d:%s10:tracker id%d:%se", iv, len(p4), p4, len(p6), p6, len(id), id)
}

// events are the event parameters of the announces so far ("" for none).
func (f *fakeHTTP) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.requests {
		out = append(out, q.Get("event"))
	}
	return out
}

func (f *fakeHTTP) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeHTTP) addr() netip.AddrPort {
	return f.Listener.Addr().(*net.TCPAddr).AddrPort()
}

// fakeUDP is an honest BEP 15 tracker on loopback. drop, if set, is
// asked about every packet (its index) and drops those it says to.
type fakeUDP struct {
	pc       *net.UDPConn
	mu       sync.Mutex
	connects int
	packets  int
	events   []Event
	ids      map[uint64]bool
	peers    []netip.AddrPort
	drop     func(i int) bool
	// refuseAll: every connection ID is unknown.
	refuseAll bool
	wg        sync.WaitGroup
}

func newFakeUDP(t *testing.T, ip string, peers ...netip.AddrPort) *fakeUDP {
	return newFakeUDPAt(t, netip.AddrPortFrom(netip.MustParseAddr(ip), 0), peers...)
}

func newFakeUDPAt(t *testing.T, at netip.AddrPort, peers ...netip.AddrPort) *fakeUDP {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(at))
	if err != nil {
		t.Skipf("no UDP on %s: %v", at, err)
	}
	f := &fakeUDP{pc: pc, ids: make(map[uint64]bool), peers: peers}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() { pc.Close(); f.wg.Wait() })
	return f
}

func (f *fakeUDP) url() string {
	return "udp://" + f.pc.LocalAddr().String() + "/announce"
}

func (f *fakeUDP) serve() {
	defer f.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := f.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		f.mu.Lock()
		i := f.packets
		f.packets++
		drop := f.drop != nil && f.drop(i)
		f.mu.Unlock()
		if drop || n < 16 {
			continue
		}
		p := buf[:n]
		conn := binary.BigEndian.Uint64(p)
		action := binary.BigEndian.Uint32(p[8:])
		tx := binary.BigEndian.Uint32(p[12:])
		out := binary.BigEndian.AppendUint32(nil, action)
		out = binary.BigEndian.AppendUint32(out, tx)
		f.mu.Lock()
		known := f.ids[conn] && !f.refuseAll
		switch {
		case action == actionConnect && conn == udpProtocolID:
			f.connects++
			id := uint64(0xc0ffee00 + f.connects)
			f.ids[id] = true
			out = binary.BigEndian.AppendUint64(out, id)
		case !known:
			out = append(binary.BigEndian.AppendUint32(nil, actionError), out[4:]...)
			out = append(out, "unknown connection ID"...)
		case action == actionAnnounce && n >= 98:
			f.events = append(f.events, Event(binary.BigEndian.Uint32(p[80:])))
			out = binary.BigEndian.AppendUint32(out, 1800)
			out = binary.BigEndian.AppendUint32(out, 2)
			out = binary.BigEndian.AppendUint32(out, 1)
			for _, a := range f.peers {
				out = append(out, a.Addr().AsSlice()...)
				out = binary.BigEndian.AppendUint16(out, a.Port())
			}
		case action == actionScrape:
			for range (n - 16) / 20 {
				out = binary.BigEndian.AppendUint32(out, 4)
				out = binary.BigEndian.AppendUint32(out, 9)
				out = binary.BigEndian.AppendUint32(out, 6)
			}
		}
		f.mu.Unlock()
		f.pc.WriteToUDPAddrPort(out, from)
	}
}

func (f *fakeUDP) stats() (connects, packets int, events []Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connects, f.packets, append([]Event(nil), f.events...)
}

func (f *fakeUDP) addr() netip.AddrPort {
	return f.pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (f *fakeUDP) setDrop(drop func(int) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop = drop
}
