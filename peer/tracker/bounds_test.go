package tracker

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"node/internal/adversary"
	"node/internal/testutil"
)

// A chain of distinct redirects is followed MaxRedirects times, no more.
func TestMaxRedirects(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		http.Redirect(w, r, fmt.Sprintf("/announce%d", n), http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	c := testClient()
	c.classify = allPublic // the redirects leave /announce
	_, err := c.Announce(ctxT(t, 5*time.Second), srv.URL+"/announce", Request{})
	if !errors.Is(err, errRedirect) {
		t.Fatalf("endless redirects: %v", err)
	}
	if n := hits.Load(); n != MaxRedirects+1 {
		t.Errorf("%d requests, want %d", n, MaxRedirects+1)
	}
	if c.Stats().Redirects != 1 {
		t.Errorf("not counted: %+v", c.Stats())
	}
}

// HTTPTimeout ends a request the tracker holds open, whatever the
// caller's context allows.
func TestHTTPTimeout(t *testing.T) {
	bt, err := adversary.NewBadTracker("127.0.0.1", adversary.TrackerSilent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bt.Close)
	c := testClient()
	if c.http.Timeout != HTTPTimeout {
		t.Fatalf("client timeout %v, want HTTPTimeout", c.http.Timeout)
	}
	c.http.Timeout = 100 * time.Millisecond
	if _, err := c.Announce(ctxT(t, time.Minute), bt.HTTPURL, Request{}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("held request: %v", err)
	}
}

// StopTimeout bounds the stopped announce to a tracker that answered
// started and then holds every request open.
func TestStopTimeout(t *testing.T) {
	var stops atomic.Int32
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("event") == "stopped" {
			stops.Add(1)
			<-hold
			return
		}
		fmt.Fprintf(w, "d8:intervali1800e5:peers6:\x7f\x00\x00\x02\x1a\xe1e")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hold) })
	var left atomic.Int64
	a := testAnnouncer([][]string{{srv.URL + "/announce"}}, &left)
	r := start(t, a)
	r.next(t)
	begin := time.Now()
	r.stop()
	d := time.Since(begin)
	if stops.Load() != 1 {
		t.Fatal("no stopped announce")
	}
	if d < StopTimeout-100*time.Millisecond || d > StopTimeout+2*time.Second {
		t.Errorf("stopping took %v, want about StopTimeout (%v)", d, StopTimeout)
	}
}

// MaxMessageLen, cut between characters, and what a terminal would obey
// or what would reorder the text around it, replaced.
func TestCleanMessage(t *testing.T) {
	long := strings.Repeat("\x1bx", MaxMessageLen)
	if c := clean(long); len(c) != MaxMessageLen || strings.ContainsRune(c, 0x1b) {
		t.Errorf("clean kept %d bytes: %q", len(c), c[:20])
	}
	for in, want := range map[string]string{
		"ok \u00e9\u4e16":                 "ok \u00e9\u4e16",
		"csi \u009b2J nel \u0085":         "csi _2J nel _",
		"rlo \u202egnp.exe \u2066x\u2069": "rlo _gnp.exe _x_",
		"bad \xff\xc3 utf-8":              "bad __ utf-8",
		"del \x7f bell \a":                "del _ bell _",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
	// A two-byte character across the bound is left out whole.
	c := clean("x" + strings.Repeat("\u00e9", MaxMessageLen))
	if !utf8.ValidString(c) || len(c) != MaxMessageLen-1 {
		t.Errorf("cut inside a character: %d bytes, valid %v", len(c), utf8.ValidString(c))
	}
}

// MaxTrackers caps the URLs an Announcer keeps, however many tiers a
// link names; the rest are counted.
func TestMaxTrackers(t *testing.T) {
	var tiers [][]string
	for i := range 1000 {
		tiers = append(tiers, []string{fmt.Sprintf("udp://t%d.example:80/announce", i)})
	}
	tiers = append(tiers, []string{"udp://t0.example:80/announce", "wss://x.example"})
	a := NewAnnouncer(Config{Tiers: tiers})
	if a.Trackers() != MaxTrackers || len(a.tiers) != MaxTrackers || a.Dropped() != 1000-MaxTrackers {
		t.Errorf("%d trackers in %d tiers, %d dropped; want %d, %d, %d",
			a.Trackers(), len(a.tiers), a.Dropped(), MaxTrackers, MaxTrackers, 1000-MaxTrackers)
	}
}

// A link with a thousand trackers costs at most MaxTrackers tiers and
// MaxAnnouncesInFlight requests under way: the goroutines and file
// descriptors stay bounded while every tracker holds its request open.
func TestAnnouncesInFlight(t *testing.T) {
	var mu sync.Mutex
	cur, most, total := 0, 0, 0
	asked := make(map[string]bool)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cur++
		total++
		most = max(most, cur)
		asked[r.URL.Query().Get("t")] = true
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		cur--
		mu.Unlock()
		w.Write([]byte("garbage"))
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)
	var tiers [][]string
	for i := range 1000 {
		tiers = append(tiers, []string{fmt.Sprintf("%s/announce?t=%d", srv.URL, i)})
	}
	var left atomic.Int64
	a := testAnnouncer(tiers, &left)
	r := start(t, a)
	testutil.WaitFor(t, 5*time.Second, "the first requests held", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total >= MaxAnnouncesInFlight
	})
	// Every tier is waiting for a place or holds one now.
	testutil.WaitFor(t, 5*time.Second, "the tiers running", func() bool {
		return runtime.NumGoroutine() >= baseG+MaxTrackers
	})
	g, fds := runtime.NumGoroutine(), openFDs(t)
	// Per request in flight: the client's, the transport's reader and
	// writer, the server's; and a socket at each end.
	if g > baseG+MaxTrackers+5*MaxAnnouncesInFlight+10 {
		t.Errorf("%d goroutines, %d before", g, baseG)
	}
	if fds > baseFD+2*MaxAnnouncesInFlight+4 {
		t.Errorf("%d open files, %d before", fds, baseFD)
	}
	once.Do(func() { close(release) })
	testutil.WaitFor(t, 10*time.Second, "every kept tracker asked", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(asked) >= MaxTrackers
	})
	r.stop()
	mu.Lock()
	defer mu.Unlock()
	if most > MaxAnnouncesInFlight || len(asked) != MaxTrackers {
		t.Errorf("%d requests at once (want at most %d), %d trackers asked (want %d)",
			most, MaxAnnouncesInFlight, len(asked), MaxTrackers)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// maxScrapeHashes is BEP 15's limit for one scrape.
func TestScrapeHashLimit(t *testing.T) {
	f := newFakeUDP(t, "127.0.0.1")
	c := testClient()
	hashes := make([][20]byte, maxScrapeHashes+1)
	if _, err := c.Scrape(ctxT(t, 5*time.Second), f.url(), hashes...); err == nil {
		t.Error("scrape of more than maxScrapeHashes accepted")
	}
	if _, err := c.Scrape(ctxT(t, 5*time.Second), f.url(), hashes[:maxScrapeHashes]...); err != nil {
		t.Error(err)
	}
}

// maxConnIDs bounds the cached connection IDs.
func TestConnIDCacheBound(t *testing.T) {
	c := testClient()
	for i := range maxConnIDs + 10 {
		c.setConnID(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(i+1)).String(), 1)
	}
	if len(c.conns) > maxConnIDs {
		t.Errorf("%d connection IDs cached", len(c.conns))
	}
}
