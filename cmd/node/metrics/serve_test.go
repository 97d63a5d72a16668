package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"node/internal/adversary"
	tu "node/internal/testutil"
)

func serveForTest(t *testing.T, cs ...prometheus.Collector) (*Server, string) {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", NewRegistry(cs...), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, "http://" + srv.Addr().String()
}

// Only GET (or HEAD) of /metrics is served, one request per connection;
// anything else is refused with the status that says why, and a header
// past MaxHeaderBytes is refused before it is read whole.
func TestServeOnlyMetrics(t *testing.T) {
	_, base := serveForTest(t, NewDHT())
	for _, c := range []struct {
		method, path string
		header       string
		want         int
	}{
		{"GET", Path, "", http.StatusOK},
		{"HEAD", Path, "", http.StatusOK},
		{"GET", "/", "", http.StatusNotFound},
		{"GET", "/metrics/x", "", http.StatusNotFound},
		{"GET", "/debug/pprof/", "", http.StatusNotFound},
		{"POST", Path, "", http.StatusMethodNotAllowed},
		{"DELETE", Path, "", http.StatusMethodNotAllowed},
		{"GET", Path, strings.Repeat("a", MaxHeaderBytes+8<<10), http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, err := http.NewRequest(c.method, base+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.header != "" {
			req.Header.Set("X-Big", c.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if c.want == http.StatusOK && !resp.Close {
			t.Errorf("%s %s: the connection is kept alive", c.method, c.path)
		}
		if resp.StatusCode != c.want {
			t.Errorf("%s %s (header of %d bytes): %s, want %d", c.method, c.path, len(c.header), resp.Status, c.want)
		}
	}
}

// A slowloris client that opens more connections than MaxConns and sends
// each header a line at a time is cut off: every connection is closed
// ReadHeaderTimeout after the server took it, the server takes no more
// than MaxConns at once, and a real scrape waiting behind them is served
// once they are gone.
func TestSlowlorisCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out ReadHeaderTimeout twice")
	}
	t.Parallel()
	_, base := serveForTest(t, NewDHT())
	const extra = 2
	sl, err := adversary.StartSlowloris(strings.TrimPrefix(base, "http://"), Path, MaxConns+extra, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Stop()

	scraped := make(chan error, 1)
	go func() {
		resp, err := http.Get(base + Path)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = &statusError{resp.Status}
			}
		}
		scraped <- err
	}()

	tu.WaitFor(t, 3*ReadHeaderTimeout+10*time.Second, "every slow connection closed", func() bool {
		for _, r := range sl.Report() {
			if !r.Closed {
				return false
			}
		}
		return true
	})
	early := 0
	for i, r := range sl.Report() {
		// The server's clock for a connection starts when it accepts it,
		// after the dial: no close can come sooner than this.
		if r.After < ReadHeaderTimeout {
			t.Errorf("connection %d closed after %v, before ReadHeaderTimeout (%v)", i, r.After, ReadHeaderTimeout)
		}
		if r.Lines < 2 {
			t.Errorf("connection %d sent %d header lines: it was not kept waiting", i, r.Lines)
		}
		// Those past MaxConns waited to be accepted until one was let go.
		if r.After < 2*ReadHeaderTimeout {
			early++
		}
		if r.Reply != "" && !strings.HasPrefix(r.Reply, "HTTP/1.1 408") {
			t.Errorf("connection %d got %q", i, r.Reply)
		}
	}
	t.Logf("%d of %d connections closed within 2×ReadHeaderTimeout", early, MaxConns+extra)
	if early > MaxConns {
		t.Errorf("%d connections were served at once, more than MaxConns (%d)", early, MaxConns)
	}
	select {
	case err := <-scraped:
		if err != nil {
			t.Fatalf("the scrape behind the slow connections: %v", err)
		}
	case <-time.After(3*ReadHeaderTimeout + 10*time.Second):
		t.Fatal("the scrape behind the slow connections never ended")
	}
}

type statusError struct{ status string }

func (e *statusError) Error() string { return e.status }

// blockingCollector holds each Collect until released, so a test can keep
// scrapes in flight.
type blockingCollector struct {
	in      chan struct{}
	release chan struct{}
	desc    *prometheus.Desc
}

func (b *blockingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

func (b *blockingCollector) Collect(ch chan<- prometheus.Metric) {
	b.in <- struct{}{}
	<-b.release
	ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, 1)
}

// At most MaxScrapes scrapes are served at once; one more gets 503 at
// once rather than queue up.
func TestMaxScrapes(t *testing.T) {
	b := &blockingCollector{
		in: make(chan struct{}, MaxScrapes+1), release: make(chan struct{}),
		desc: prometheus.NewDesc("node_test_blocking", "A gauge whose collection waits.", nil, nil),
	}
	_, base := serveForTest(t, b)
	var wg sync.WaitGroup
	codes := make(chan int, MaxScrapes)
	for range MaxScrapes {
		wg.Go(func() {
			resp, err := http.Get(base + Path)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range MaxScrapes {
		select {
		case <-b.in:
		case <-ctx.Done():
			t.Fatal("the scrapes did not reach the collector")
		}
	}
	resp, err := http.Get(base + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("scrape %d: %s, want 503", MaxScrapes+1, resp.Status)
	}
	close(b.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a scrape in the limit got %d", c)
		}
	}
}

// A scrape whose collection does not end is answered 503 once the
// handler's share of WriteTimeout is spent, and its connection let go.
func TestSlowCollectionCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out WriteTimeout")
	}
	t.Parallel()
	b := &blockingCollector{
		in: make(chan struct{}, 1), release: make(chan struct{}),
		desc: prometheus.NewDesc("node_test_blocking", "A gauge whose collection waits.", nil, nil),
	}
	_, base := serveForTest(t, b)
	t.Cleanup(func() { close(b.release) }) // before the server closes: Cleanups run last first
	start := time.Now()
	resp, err := http.Get(base + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a collection that never ends: %s, want 503", resp.Status)
	}
	if took > WriteTimeout {
		t.Errorf("answered after %v, past WriteTimeout (%v)", took, WriteTimeout)
	}
}
