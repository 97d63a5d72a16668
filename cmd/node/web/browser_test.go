package web_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"node/cmd/node/api"
	"node/cmd/node/web"
	"node/internal/browsertest"
	"node/internal/testutil"
)

// TestPageInBrowser runs the page in headless chromium against the fake
// daemon: log in, add a magnet through the form, watch it complete, open
// it, check the DHT drawing, pause, resume, remove with its data.
// Screenshots go to $NODE_SCREENSHOTS if set, else t.ArtifactDir().
func TestPageInBrowser(t *testing.T) {
	browsertest.SkipWithoutChromium(t)
	const token = "browser-test-token"
	f := newFakeDaemon()
	s, err := api.Listen("127.0.0.1:0", api.ServerConfig{Backend: f, Token: token, Page: web.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ih := strings.Repeat("5a", 20)
	mag := "magnet:?xt=urn:btih:" + ih + "&dn=" + url.QueryEscape(`<b>hostile</b> & "name" `+fakeHostile)
	browsertest.Run(t, browsertest.Config{
		URL: "http://" + s.Addr().String(), Token: token, Magnet: mag,
		OnDetail: func(t *testing.T, ctx context.Context) { checkMaxRows(t, ctx, f) },
	})

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.adds != 1 || f.paused != 1 || f.resumed != 1 {
		t.Errorf("the daemon saw %d adds, %d pauses, %d resumes; want 1 each", f.adds, f.paused, f.resumed)
	}
	if del, ok := f.removed[ih]; !ok || !del {
		t.Errorf("removed with data: %v (removed at all: %v), want true", del, ok)
	}
}

// checkMaxRows shows the page's bound on the files it draws (MAX_ROWS in
// app.js) holding: a torrent of more files draws that many and says how
// many more there are.
func checkMaxRows(t *testing.T, ctx context.Context, f *fakeDaemon) {
	t.Helper()
	js, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`const MAX_ROWS = (\d+);`).FindSubmatch(js)
	if m == nil {
		t.Fatal("app.js has no MAX_ROWS")
	}
	maxRows, _ := strconv.Atoi(string(m[1]))
	// More than the API sends (MaxDetailFiles), on top of the fake's
	// own 3: the page says how many more from files_total.
	f.mu.Lock()
	f.manyFiles = api.MaxDetailFiles
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.manyFiles = 0
		f.mu.Unlock()
	}()
	wantMore := fmt.Sprintf("and %d more files", api.MaxDetailFiles+3-maxRows)
	var rows int
	testutil.WaitFor(t, 20*time.Second, "the page to draw the bounded file list", func() bool {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]any](`(() => {
			const rs = document.querySelectorAll('#d-files tbody tr');
			return [rs.length, rs.length ? rs[rs.length - 1].textContent : ''];
		})()`))
		if err != nil || len(got) != 2 {
			t.Fatalf("counting file rows: %v", err)
		}
		n, _ := got[0].(float64)
		rows = int(n)
		return got[1] == wantMore
	})
	if rows != maxRows+1 {
		t.Errorf("%d file rows drawn for %d files, want MAX_ROWS (%d) and one that says %q", rows, api.MaxDetailFiles+3, maxRows, wantMore)
	}
}
