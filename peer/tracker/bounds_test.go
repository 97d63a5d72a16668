package tracker

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/adversary"
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

// MaxMessageLen and control characters in a tracker's text.
func TestCleanMessage(t *testing.T) {
	long := strings.Repeat("\x1bx", MaxMessageLen)
	if c := clean(long); len(c) != MaxMessageLen || strings.ContainsRune(c, 0x1b) {
		t.Errorf("clean kept %d bytes: %q", len(c), c[:20])
	}
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
