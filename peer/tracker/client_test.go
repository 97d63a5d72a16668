package tracker

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"node/internal/adversary"
)

var (
	ih     = [20]byte{0x12, ' ', '+', 0xff, '&', '='}
	peerID = [20]byte{'-', 'N', 'D'}
	seed1  = netip.MustParseAddrPort("127.0.0.2:6881")
	seed2  = netip.MustParseAddrPort("127.0.0.3:6882")
	seed6  = netip.MustParseAddrPort("[::1]:6883")
)

func testClient() *Client {
	c := NewClient("node-test", netip.Addr{})
	c.udpBase = 20 * time.Millisecond
	return c
}

// allPublic places every address on the Internet, for tests of rules
// other than the local ones.
func allPublic(netip.Addr) locality { return localPublic }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestHTTPAnnounce(t *testing.T) {
	f := newFakeHTTP(t, seed1, seed2, seed6)
	c := testClient()
	r, err := c.Announce(ctxT(t, 5*time.Second), f.announceURL()+"?passkey=x", Request{
		InfoHash: ih, PeerID: peerID, Port: 6881, Left: 100, Uploaded: 3, Downloaded: 4, Event: Started,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.AddrPort{seed1, seed2, seed6}; !slices.Equal(r.Peers, want) {
		t.Errorf("peers %v, want %v", r.Peers, want)
	}
	if r.Interval != 1800*time.Second || r.Seeders != 1 || r.Leechers != 2 {
		t.Errorf("answer %+v", r)
	}
	if r.From != f.addr() {
		t.Errorf("from %v, want %v", r.From, f.addr())
	}
	f.mu.Lock()
	q := f.requests[0]
	f.mu.Unlock()
	for k, v := range map[string]string{
		"info_hash": string(ih[:]), "peer_id": string(peerID[:]), "port": "6881", "left": "100",
		"uploaded": "3", "downloaded": "4", "event": "started", "compact": "1", "passkey": "x", "numwant": "50",
	} {
		if q.Get(k) != v {
			t.Errorf("%s=%q, want %q", k, q.Get(k), v)
		}
	}
	if s := c.Stats(); s.Announces != 1 || s.PeersFound != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestHTTPAnnounceDictPeers(t *testing.T) {
	r, err := ParseAnnounce([]byte("d8:intervali900e5:peersld2:ip9:127.0.0.27:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881eed2:ip3:::14:porti1eed2:ip11:example.com4:porti1eed2:ip9:127.0.0.34:porti0eeee"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{seed1, netip.MustParseAddrPort("[::1]:1")}
	if !slices.Equal(r.Peers, want) || r.Dropped != 2 {
		t.Errorf("peers %v dropped %d, want %v and 2 (a name, a port 0)", r.Peers, r.Dropped, want)
	}
}

func TestHTTPScrape(t *testing.T) {
	f := newFakeHTTP(t)
	c := testClient()
	res, err := c.Scrape(ctxT(t, 5*time.Second), f.announceURL(), ih)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ScrapeResult{Seeders: 3, Completed: 7, Leechers: 5}); res[0] != want {
		t.Errorf("scrape %+v, want %+v", res[0], want)
	}
	if _, err := c.Scrape(ctxT(t, 5*time.Second), f.URL+"/tracker", ih); !errors.Is(err, ErrUnsupported) {
		t.Errorf("scrape of a URL with no convention: %v", err)
	}
}

// BEP 48's convention, with the examples of the BEP (from BEP 3's wiki).
func TestScrapeURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://example.com/announce":          "http://example.com/scrape",
		"http://example.com/x/announce":        "http://example.com/x/scrape",
		"http://example.com/announce.php":      "http://example.com/scrape.php",
		"http://example.com/a?x2%0644":         "",
		"http://example.com/announce?x2%0644":  "http://example.com/scrape?x2%0644",
		"http://example.com/announce?x=2/4":    "http://example.com/scrape?x=2/4",
		"http://example.com/x%064announce":     "",
		"http://example.com/announce/x":        "",
		"http://example.com/announce%2Fx/stop": "",
	} {
		u, _ := url.Parse(in)
		got, err := scrapeURL(u)
		if want == "" {
			if err == nil {
				t.Errorf("%s: scrape URL %s, want none", in, got)
			}
			continue
		}
		if err != nil || got.String() != want {
			t.Errorf("%s: %v %v, want %s", in, got, err, want)
		}
	}
}

func TestUDPAnnounceAndScrape(t *testing.T) {
	f := newFakeUDP(t, "127.0.0.1", seed1, seed2)
	c := testClient()
	ctx := ctxT(t, 5*time.Second)
	r, err := c.Announce(ctx, f.url(), Request{InfoHash: ih, PeerID: peerID, Port: 1, Event: Started})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, []netip.AddrPort{seed1, seed2}) || r.From != f.addr() || r.Seeders != 1 || r.Leechers != 2 {
		t.Errorf("answer %+v", r)
	}
	res, err := c.Scrape(ctx, f.url(), ih, [20]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ScrapeResult{Seeders: 4, Completed: 9, Leechers: 6}); len(res) != 2 || res[1] != want {
		t.Errorf("scrape %+v", res)
	}
	if connects, _, events := f.stats(); connects != 1 || !slices.Equal(events, []Event{Started}) {
		t.Errorf("%d connects (want 1: the ID is reused), events %v", connects, events)
	}
}

// A connection ID is asked for again once UDPConnectionIDLifetime has
// passed, and after the tracker refuses it.
func TestUDPConnectionIDLifetime(t *testing.T) {
	f := newFakeUDP(t, "127.0.0.1", seed1)
	c := testClient()
	ctx := ctxT(t, 5*time.Second)
	announce := func() {
		t.Helper()
		if _, err := c.Announce(ctx, f.url(), Request{InfoHash: ih}); err != nil {
			t.Fatal(err)
		}
	}
	announce()
	announce()
	if n, _, _ := f.stats(); n != 1 {
		t.Fatalf("%d connects, want 1", n)
	}
	key := f.addr().String()
	c.mu.Lock()
	ci := c.conns[key]
	ci.at = ci.at.Add(-UDPConnectionIDLifetime)
	c.conns[key] = ci
	c.mu.Unlock()
	announce()
	if n, _, _ := f.stats(); n != 2 {
		t.Fatalf("%d connects after the ID expired, want 2", n)
	}
	// An ID the tracker forgot ("connection ID expired"): its error
	// answer drops the ID, and the same announce connects anew and
	// succeeds.
	c.mu.Lock()
	c.conns[key] = connID{id: 42, at: time.Now()}
	c.mu.Unlock()
	if _, err := c.Announce(ctx, f.url(), Request{InfoHash: ih}); err != nil {
		t.Fatalf("announce with a forgotten ID: %v", err)
	}
	if n, _, _ := f.stats(); n != 3 {
		t.Fatalf("%d connects after a refused ID, want 3", n)
	}
	// A fresh ID that is refused is the tracker's answer: no retry.
	f.mu.Lock()
	clear(f.ids)
	f.refuseAll = true
	f.mu.Unlock()
	c.dropConnID(key)
	if _, err := c.Announce(ctx, f.url(), Request{InfoHash: ih}); err == nil || !strings.Contains(err.Error(), "unknown connection ID") {
		t.Fatalf("announce refused with a fresh ID: %v", err)
	}
	if n, _, _ := f.stats(); n != 4 {
		t.Fatalf("%d connects, want 4: a fresh ID refused is not asked again", n)
	}
}

// BEP 15's retries: a lost packet is sent again after udpBase·2^n, and
// a tracker that never answers gets exactly UDPMaxAttempts tries.
func TestUDPRetries(t *testing.T) {
	f := newFakeUDP(t, "127.0.0.1", seed1)
	f.setDrop(func(i int) bool { return i == 0 || i == 2 }) // the first connect, the first announce
	c := testClient()
	r, err := c.Announce(ctxT(t, 5*time.Second), f.url(), Request{InfoHash: ih})
	if err != nil || len(r.Peers) != 1 {
		t.Fatalf("announce through lost packets: %v %v", r, err)
	}
	if _, packets, _ := f.stats(); packets != 4 {
		t.Errorf("%d packets, want 4", packets)
	}

	silent := newFakeUDP(t, "127.0.0.1")
	silent.setDrop(func(int) bool { return true })
	start := time.Now()
	_, err = c.Announce(ctxT(t, 5*time.Second), silent.url(), Request{InfoHash: ih})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("silent tracker: %v", err)
	}
	if _, packets, _ := silent.stats(); packets != UDPMaxAttempts {
		t.Errorf("%d packets to a silent tracker, want %d", packets, UDPMaxAttempts)
	}
	// 20+40+80 ms: the schedule, not the context, ended it.
	if d := time.Since(start); d < 140*time.Millisecond {
		t.Errorf("gave up after %v, before the schedule's 140 ms", d)
	}
	if s := c.Stats(); s.Timeouts != 1 || s.AnnounceErrors != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestUDPIPv6Peers(t *testing.T) {
	f := newFakeUDP(t, "::1", seed6, netip.MustParseAddrPort("[::1]:7"))
	r, err := testClient().Announce(ctxT(t, 5*time.Second), f.url(), Request{InfoHash: ih})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, []netip.AddrPort{seed6, netip.MustParseAddrPort("[::1]:7")}) {
		t.Errorf("peers %v", r.Peers)
	}
}

// A closed UDP port answers with ICMP: the announce fails at once.
func TestUDPTrackerDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "udp://" + pc.LocalAddr().String()
	pc.Close()
	if _, err := testClient().Announce(ctxT(t, 5*time.Second), u, Request{}); err == nil || errors.Is(err, ErrTimeout) {
		t.Fatalf("announce to a closed port: %v, want a refusal", err)
	}
}

func TestCheckURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"http://t.example/announce": true, "https://t.example/a": true, "udp://t.example:80": true,
		"udp://t.example": false, "wss://t.example": false, "http:///announce": false, "%": false,
	} {
		if err := CheckURL(u); (err == nil) != ok {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// Every hostile tracker ends in a clear error of its kind, counted, or,
// where its answer is usable, in an answer within the bounds.
func TestHostileTrackers(t *testing.T) {
	type want struct {
		err   error // nil: a usable answer
		count func(Stats) uint64
	}
	bad := func(s Stats) uint64 { return s.BadAnswers }
	timeouts := func(s Stats) uint64 { return s.Timeouts }
	refusals := func(s Stats) uint64 { return s.Refusals }
	dropped := func(s Stats) uint64 { return s.PeersDropped }
	refused := errors.New("a refusal")
	cases := []struct {
		attack    adversary.TrackerAttack
		http, udp *want
	}{
		{adversary.TrackerSilent, &want{ErrTimeout, timeouts}, &want{ErrTimeout, timeouts}},
		{adversary.TrackerClose, &want{errors.New("any"), func(s Stats) uint64 { return s.AnnounceErrors }}, nil},
		{adversary.TrackerGarbage, &want{ErrBadAnswer, bad}, &want{ErrBadAnswer, bad}},
		{adversary.TrackerTruncated, &want{ErrBadAnswer, bad}, &want{ErrBadAnswer, bad}},
		{adversary.TrackerOversized, &want{ErrBadAnswer, bad}, &want{ErrBadAnswer, bad}},
		{adversary.TrackerWrongTx, nil, &want{ErrTimeout, func(s Stats) uint64 { return s.WrongTxID }}},
		{adversary.TrackerRedirectLoop, &want{errRedirect, func(s Stats) uint64 { return s.Redirects }}, nil},
		{adversary.TrackerBadLength, &want{ErrBadAnswer, bad}, &want{ErrBadAnswer, bad}},
		{adversary.TrackerAbsurdInterval, &want{nil, nil}, &want{nil, nil}},
		{adversary.TrackerPeerFlood, &want{nil, dropped}, &want{nil, dropped}},
		{adversary.TrackerFailure, &want{refused, refusals}, &want{refused, refusals}},
	}
	for _, tc := range cases {
		bt, err := adversary.NewBadTracker("127.0.0.1", tc.attack, seed1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bt.Close)
		for proto, w := range map[string]*want{"http": tc.http, "udp": tc.udp} {
			if w == nil {
				continue
			}
			u := bt.HTTPURL
			if proto == "udp" {
				u = bt.UDPURL
			}
			c := testClient()
			r, err := c.Announce(ctxT(t, 500*time.Millisecond), u, Request{InfoHash: ih})
			name := u + " attack " + string(rune('0'+tc.attack))
			switch {
			case w.err == nil:
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if len(r.Peers) == 0 || len(r.Peers) > MaxPeersPerAnswer {
					t.Errorf("%s: %d peers", name, len(r.Peers))
				}
			case err == nil:
				t.Errorf("%s: no error", name)
				continue
			case w.err == refused:
				var te *Error
				if !errors.As(err, &te) || strings.ContainsAny(te.Msg, "\x1b\x07") {
					t.Errorf("%s: %v, want a clean refusal", name, err)
				}
			case w.err.Error() != "any" && !errors.Is(err, w.err):
				t.Errorf("%s: %v, want %v", name, err, w.err)
			}
			if w.count != nil && w.count(c.Stats()) == 0 {
				t.Errorf("%s: not counted: %+v", name, c.Stats())
			}
			t.Logf("%s: %v", name, err)
		}
	}
}

// The answer bounds: MaxBodySize, MaxPeersPerAnswer, MaxUDPPacket.
func TestAnswerBounds(t *testing.T) {
	pad := strings.Repeat("x", MaxBodySize)
	if _, err := ParseAnnounce([]byte("d3:pad" + itoa(len(pad)) + ":" + pad + "8:intervali1ee")); !errors.Is(err, ErrBadAnswer) {
		t.Errorf("answer over MaxBodySize: %v", err)
	}
	many := make([]byte, 6*(MaxPeersPerAnswer+5))
	for i := range MaxPeersPerAnswer + 5 {
		copy(many[6*i:], []byte{127, 0, byte(i >> 8), byte(i), 0, 1})
	}
	r, err := ParseAnnounce([]byte("d8:intervali1e5:peers" + itoa(len(many)) + ":" + string(many) + "e"))
	if err != nil || len(r.Peers) != MaxPeersPerAnswer || r.Dropped != 5 {
		t.Errorf("%d peers, %d dropped, %v; want %d and 5", len(r.Peers), r.Dropped, err, MaxPeersPerAnswer)
	}
	p := append(make([]byte, 0, MaxUDPPacket), 0, 0, 0, 1, 0, 0, 0, 9)
	p = append(p, make([]byte, 12)...)
	for range MaxPeersPerAnswer + 1 {
		p = append(p, 127, 0, 0, 1, 0, 1)
	}
	if r, err := parseUDPAnnounce(p, 9, false); err != nil || len(r.Peers) != MaxPeersPerAnswer {
		t.Errorf("udp: %d peers, %v", len(r.Peers), err)
	}
	for n, want := range map[int]bool{maxTrackerIDLen: true, maxTrackerIDLen + 1: false} {
		id := strings.Repeat("i", n)
		r, err := ParseAnnounce([]byte("d8:intervali1e5:peers0:10:tracker id" + itoa(n) + ":" + id + "e"))
		if err != nil || (r.TrackerID == id) != want {
			t.Errorf("a %d-byte tracker id: kept %v, %v", n, r.TrackerID == id, err)
		}
	}
	deep := strings.Repeat("l", maxDepth+1) + strings.Repeat("e", maxDepth+1)
	if _, err := ParseAnnounce([]byte("d1:x" + deep + "e")); err == nil {
		t.Error("answer nested past maxDepth accepted")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
