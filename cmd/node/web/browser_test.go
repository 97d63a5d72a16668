package web_test

import (
	"net/url"
	"strings"
	"testing"

	"node/cmd/node/api"
	"node/cmd/node/web"
	"node/internal/browsertest"
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
	browsertest.Run(t, browsertest.Config{URL: "http://" + s.Addr().String(), Token: token, Magnet: mag})

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.adds != 1 || f.paused != 1 || f.resumed != 1 {
		t.Errorf("the daemon saw %d adds, %d pauses, %d resumes; want 1 each", f.adds, f.paused, f.resumed)
	}
	if del, ok := f.removed[ih]; !ok || !del {
		t.Errorf("removed with data: %v (removed at all: %v), want true", del, ok)
	}
}
