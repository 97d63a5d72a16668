// Package browsertest drives node daemon's web page in a real browser:
// Debian's chromium, headless, through github.com/chromedp/chromedp. Run
// takes the URL of a running API server (a fake Backend's or the real
// daemon's) and does what a user does: logs in with a one-time login URL
// (minted with the token, as node url does; the code leaves the address
// bar, a second tab cannot use it again, and a tab without it is told how
// to log in; a reload stays logged in), adds a
// magnet through the form, watches it complete, opens the torrent, opens
// the DHT view and checks that the routing table and the lookups are drawn
// as the API describes them, pauses, resumes and removes the torrent with
// its data. It saves a screenshot of each view. It fails on any script
// error, console error (a CSP violation is one) or request the page makes
// to anywhere but the daemon.
//
// The browser stays on the machine: every host name resolves to nothing
// but 127.0.0.1, every request that is not to loopback goes to a proxy that
// is a trap in this process (any connection to it fails the test), and the
// browser's own background traffic (updates, sync, safe browsing, metrics)
// is turned off.
//
// Test support only: the node binary never links it.
package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"node/cmd/node/api"
	"node/magnet"
)

// Timeout bounds one Run, browser start included, when Config.Timeout is
// zero: a loaded machine starts chromium in seconds, and the fake swarm
// completes in a few polls.
const Timeout = 2 * time.Minute

// ScreenshotsEnv names a directory to keep the screenshots in; without it
// they go to t.ArtifactDir() (kept under go test's -outputdir with
// -artifacts, removed otherwise).
const ScreenshotsEnv = "NODE_SCREENSHOTS"

// Config is what Run drives.
type Config struct {
	// URL is the API server's base URL: http://127.0.0.1:PORT.
	URL string
	// Token is the API token, for minting the login URL and for Run's
	// own API reads.
	Token string
	// Magnet is added through the page's form and must complete.
	Magnet string
	// Timeout bounds the run; zero: Timeout.
	Timeout time.Duration
	// Screenshots is where the PNGs go; empty: $NODE_SCREENSHOTS, else
	// t.ArtifactDir().
	Screenshots string
	// OnDetail, if set, runs while the page shows the complete torrent,
	// with the browser's context: a backend's own checks of that view.
	OnDetail func(t *testing.T, ctx context.Context)
}

// Chromium is the path of a chromium binary on PATH, or "".
func Chromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// SkipWithoutChromium skips t when there is no chromium to run.
func SkipWithoutChromium(t testing.TB) string {
	t.Helper()
	p := Chromium()
	if p == "" {
		t.Skip("no chromium on PATH: the web page is not tested in a browser (apt-get install -y chromium, or make test-browser)")
	}
	return p
}

// Run drives the page at cfg.URL through a whole session; see the package
// comment.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	chromium := SkipWithoutChromium(t)
	if u, err := url.Parse(cfg.URL); err != nil || !isLoopback(u.Hostname()) {
		t.Fatalf("browsertest: URL %q is not on loopback", cfg.URL)
	}
	link, err := magnet.Parse(cfg.Magnet)
	if err != nil || !link.HasV1 {
		t.Fatalf("browsertest: magnet %q: %v", cfg.Magnet, err)
	}
	ih := fmt.Sprintf("%x", link.InfoHash)
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = Timeout
	}
	shots := screenshotDir(t, cfg.Screenshots)

	trap := startTrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, allocatorOptions(chromium, trap.addr)...)
	defer acancel() // kills chromium, waits for it, removes its profile
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	wt := &watcher{base: cfg.URL}
	if err := chromedp.Listen(bctx, wt.event); err != nil {
		t.Fatalf("starting chromium %s: %v", chromium, err)
	}
	for _, err := range []error{
		call(bctx, runtime.Enable),
		call(bctx, cdplog.Enable),
		func() error { _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); return err }(),
	} {
		if err != nil {
			t.Fatalf("enabling the DevTools domains: %v", err)
		}
	}
	defer func() {
		for _, p := range wt.problems() {
			t.Errorf("browser: %s", p)
		}
		for _, c := range trap.connections() {
			t.Errorf("the browser tried to leave the machine: %s", c)
		}
	}()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v (problems so far: %q)", what, err, wt.problems())
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	row := `#torrents tr[data-ih="` + ih + `"]`

	var lc api.LoginCode
	if err := apiCall(bctx, cfg, "POST", api.LoginCodePath, &lc); err != nil {
		t.Fatalf("minting a login URL: %v", err)
	}
	step("log in",
		chromedp.Navigate(lc.URL),
		chromedp.WaitVisible(chromedp.CSS(`body[data-view="torrents"] #add-form`)),
	)
	waitLoggedIn(t, bctx, "after the login")
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil || strings.Contains(loc, "login=") || strings.Contains(loc, lc.Code) || strings.Contains(loc, cfg.Token) {
		t.Fatalf("after the login the page is at %q (%v): want / with no code or token in it", loc, err)
	}
	checkOtherTab(t, bctx, lc.URL)
	step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-view="torrents"] #add-form`)))
	waitLoggedIn(t, bctx, "after a reload")

	step("add the magnet through the form",
		chromedp.SendKeys(chromedp.ID("add-magnet"), cfg.Magnet),
		chromedp.Click(chromedp.ID("add-submit")),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)
	shot("1-torrents-added.png")
	step("wait until the page shows the torrent complete",
		chromedp.WaitVisible(chromedp.CSS(row+`.complete`)),
	)
	shot("2-torrents-complete.png")
	checkText(t, bctx, cfg, ih, row)
	pct, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(row+` .pct`)))
	if err != nil || pct != "100%" {
		t.Errorf("complete torrent's progress reads %q (%v), want 100%%", pct, err)
	}

	step("open the torrent",
		chromedp.Click(chromedp.CSS(row+` a.tname`)),
		chromedp.WaitVisible(chromedp.CSS(`#view-detail.complete #d-pieces rect.have`)),
	)
	have, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
		`[document.getElementById('d-pieces').dataset.have, document.getElementById('d-pieces').dataset.pieces]`))
	if err != nil || len(have) != 2 || have[0] != have[1] || have[0] == "0" {
		t.Errorf("piece map of a complete torrent: have/pieces %q (%v)", have, err)
	}
	checkText(t, bctx, cfg, ih, "#view-detail")
	shot("3-torrent-detail.png")
	if cfg.OnDetail != nil {
		cfg.OnDetail(t, bctx)
	}

	step("open the DHT view",
		chromedp.Click(chromedp.ID("nav-dht")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-view="dht"] #dht-table svg.rtable`)),
		chromedp.WaitVisible(chromedp.CSS(`#dht-lookups svg.lookup`)),
	)
	checkDHT(t, bctx, cfg)
	shot("4-dht.png")

	step("pause it from the list",
		chromedp.Click(chromedp.ID("nav-torrents")),
		chromedp.Click(chromedp.CSS(row+` button.toggle`)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-state="paused"]`)),
	)
	step("resume it",
		chromedp.Click(chromedp.CSS(row+` button.toggle`)),
		chromedp.WaitNotPresent(chromedp.CSS(row+`[data-state="paused"]`)),
	)
	step("remove it with its data",
		chromedp.Click(chromedp.CSS(row+` button.remove`)),
		chromedp.WaitVisible(chromedp.ID("remove-dialog")),
		chromedp.Click(chromedp.ID("remove-data")),
	)
	shot("5-remove-confirm.png")
	step("confirm the removal",
		chromedp.Click(chromedp.ID("remove-confirm")),
		chromedp.WaitNotPresent(chromedp.CSS(row)),
	)
}

// checkText checks that what the API says reached the page as text: the
// torrent's name reads as the API has it, and nothing in where (a name, a
// path, an address) became markup or ran.
func checkText(t *testing.T, ctx context.Context, cfg Config, ih, where string) {
	t.Helper()
	var list struct{ Torrents []api.Torrent }
	if err := apiGet(ctx, cfg, "/api/v1/torrents", &list); err != nil {
		t.Fatalf("reading the torrents from the API: %v", err)
	}
	name := ""
	for _, tr := range list.Torrents {
		if tr.InfoHash == ih {
			name = tr.Name
		}
	}
	const probe = `(() => {
		const w = document.querySelector(%q);
		const n = w && w.querySelector('a.tname, #d-name');
		return {
			name: n ? n.textContent : null,
			injected: w ? w.querySelectorAll('img, script, iframe, object, embed, b, u, style, link').length : -1,
			ran: typeof window.pwned !== 'undefined',
		};
	})()`
	got, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
		Name     *string `json:"name"`
		Injected int     `json:"injected"`
		Ran      bool    `json:"ran"`
	}](fmt.Sprintf(probe, where)))
	if err != nil {
		t.Fatalf("reading %s: %v", where, err)
	}
	if got.Name == nil || *got.Name != name {
		t.Errorf("%s: the page shows the name %v, the API says %q", where, got.Name, name)
	}
	if got.Injected != 0 || got.Ran {
		t.Errorf("%s: API text became markup: %d injected elements, script ran: %v", where, got.Injected, got.Ran)
	}
}

func call(ctx context.Context, cmd cdp.Command[cdp.Empty, cdp.Empty]) error {
	_, err := chromedp.Call(ctx, cmd, cdp.Empty{})
	return err
}

func allocatorOptions(chromium, trap string) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		// Nothing leaves the machine: names resolve to nothing but
		// loopback (no DNS query is made), and whatever is not loopback
		// goes to the trap, not to the network. Chromium sends loopback
		// direct even with a proxy set.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("http://"+trap),
		// And the browser's own traffic is off, so that the trap stays
		// empty: each of these was seen at the trap without it.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-component-extensions-with-background-pages", true),
		chromedp.Flag("disable-field-trial-config", true),
		chromedp.Flag("disable-search-engine-choice-screen", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-service-autorun", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("dns-prefetch-disable", true),
		chromedp.Flag("webrtc-ip-handling-policy", "disable_non_proxied_udp"),
		chromedp.Flag("force-webrtc-ip-handling-policy", true),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,NetworkTimeServiceQuerying,"+
			"OptimizationHints,OptimizationGuideModelDownloading,OptimizationHintsFetching,OptimizationTargetPrediction,"+
			"MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater,"+
			"PreconnectToSearch,DnsOverHttps"),
	)
	// Google's own services (sign-in, push messaging, the search
	// engine's base) have no switch to turn them off, only to point them
	// elsewhere: at a closed loopback port.
	for _, f := range []string{"gaia-url", "google-apis-url", "lso-url", "google-base-url",
		"gcm-checkin-url", "gcm-mcs-endpoint", "gcm-registration-url"} {
		opts = append(opts, chromedp.Flag(f, deadURL))
	}
	return opts
}

// deadURL is where Google's services are sent: the discard port, closed
// on any machine that runs these tests.
const deadURL = "http://127.0.0.1:9"

// checkDHT waits until the page draws what the API says: one dot per
// routing table node, one row per bucket, and per lookup one mark per
// answer (failures apart). The API and the page are read anew each time,
// since a live DHT changes between polls.
func checkDHT(t *testing.T, ctx context.Context, cfg Config) {
	t.Helper()
	type drawn struct {
		Buckets int   `json:"buckets"`
		Nodes   int   `json:"nodes"`
		Marks   []int `json:"marks"`
		Fails   []int `json:"fails"`
	}
	const count = `(() => {
		const figs = [...document.querySelectorAll('#dht-lookups svg.lookup')];
		return {
			buckets: document.querySelectorAll('#dht-table svg.rtable g.bucket').length,
			nodes: document.querySelectorAll('#dht-table svg.rtable circle.node').length,
			marks: figs.map((f) => f.querySelectorAll('.mark').length),
			fails: figs.map((f) => f.querySelectorAll('.mark.fail').length),
		};
	})()`
	var last string
	for ctx.Err() == nil {
		st, err := dhtStatus(ctx, cfg)
		if err != nil {
			t.Fatalf("reading the DHT from the API: %v", err)
		}
		var want drawn
		want.Buckets = len(st.Buckets)
		for _, b := range st.Buckets {
			want.Nodes += len(b.Nodes)
		}
		for _, l := range st.Lookups {
			fails := 0
			for _, a := range l.Answers {
				if !a.OK {
					fails++
				}
			}
			want.Marks = append(want.Marks, len(l.Answers))
			want.Fails = append(want.Fails, fails)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[drawn](count))
		if err != nil {
			t.Fatalf("counting the page's marks: %v", err)
		}
		if want.Nodes == 0 || len(want.Marks) == 0 {
			t.Fatalf("the API shows %d routing table nodes and %d lookups: nothing to check the drawing against", want.Nodes, len(want.Marks))
		}
		last = fmt.Sprintf("page draws %+v, API has %+v", got, want)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			t.Logf("DHT view: %s", last)
			return
		}
		// The page polls once a second; look again after its next poll.
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("the DHT view never matched the API: %s", last)
}

func dhtStatus(ctx context.Context, cfg Config) (api.DHTStatus, error) {
	var st api.DHTStatus
	return st, apiGet(ctx, cfg, "/api/v1/dht", &st)
}

// apiGet reads the API as a client does, with the bearer token.
func apiGet(ctx context.Context, cfg Config, path string, v any) error {
	return apiCall(ctx, cfg, "GET", path, v)
}

// apiCall calls the API as a client does, with the bearer token, and
// decodes a 200's answer into v.
func apiCall(ctx context.Context, cfg Config, method, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(cfg.URL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitLoggedIn waits for the page's first answered poll: a status that
// says it updated, the login banner hidden, a session in its
// sessionStorage.
func waitLoggedIn(t *testing.T, ctx context.Context, when string) {
	t.Helper()
	const probe = `(() => ({
		updated: document.getElementById('status').textContent.startsWith('updated'),
		banner: !document.getElementById('login-needed').hidden,
		session: sessionStorage.getItem('node-session') !== null,
	}))()`
	type state struct{ Updated, Banner, Session bool }
	var got state
	for ctx.Err() == nil {
		var err error
		if got, err = chromedp.Run(ctx, chromedp.Evaluate[state](probe)); err != nil {
			t.Fatalf("%s: reading the page: %v", when, err)
		}
		if got.Updated && !got.Banner && got.Session {
			return
		}
		if got.Banner {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s: the page is not logged in: %+v", when, got)
}

// checkOtherTab opens a second tab: with no login it says how to get one;
// with the login URL the first tab used, the same (a code buys one
// session); and it never reaches the API's data.
func checkOtherTab(t *testing.T, ctx context.Context, used string) {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	defer cancel() // closes the tab
	for _, tc := range []struct{ url, why string }{
		{used, "used already or has expired"},
		{strings.Split(used, "#")[0], ""},
	} {
		err := chromedp.Do(tab,
			chromedp.Navigate(tc.url),
			chromedp.WaitVisible(chromedp.ID("login-needed")),
		)
		if err != nil {
			t.Fatalf("a second tab at %s: %v", tc.url, err)
		}
		got, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[
			document.getElementById('login-needed').textContent,
			String(document.querySelectorAll('#torrents tbody tr').length),
			location.href]`))
		if err != nil || len(got) != 3 {
			t.Fatalf("reading the second tab: %v", err)
		}
		if !strings.Contains(got[0], "node url") || !strings.Contains(got[0], tc.why) || got[1] != "0" || strings.Contains(got[2], "login=") {
			t.Errorf("a second tab at %s: banner %q, %s torrent rows, at %s: want the login banner, no torrents, no code in the address", tc.url, got[0], got[1], got[2])
		}
	}
}

func screenshotDir(t *testing.T, dir string) string {
	if dir == "" {
		dir = os.Getenv(ScreenshotsEnv)
	}
	if dir == "" {
		return t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// watcher keeps what the page did wrong: script errors, console errors
// (CSP violations among them) and any request that is not to base.
type watcher struct {
	base string
	mu   sync.Mutex
	errs []string
}

func (w *watcher) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, s)
}

func (w *watcher) problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.errs...)
}

// event runs on chromedp's reading goroutine: it only records.
func (w *watcher) event(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		if d != nil {
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			w.add("script exception: " + msg)
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			w.add("console." + string(ev.Type) + " called")
		}
	case *cdplog.EventEntryAdded:
		if e := ev.Entry; e != nil && e.Level == cdplog.EntryLevelError {
			w.add("console error: " + e.Text + " " + e.URL)
		}
	case *network.EventRequestWillBeSent:
		if r := ev.Request; r != nil && !strings.HasPrefix(r.URL, w.base) {
			w.add("request outside the daemon: " + r.URL)
		}
	}
}

// trap is the browser's proxy: the only place a non-loopback request can
// go. It answers nothing and remembers who asked.
type trap struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func startTrap(t *testing.T) *trap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{addr: ln.Addr().String()}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					tr.record("accept: " + err.Error())
				}
				return
			}
			c.SetDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			tr.record(strings.TrimSpace(line))
		}
	}()
	return tr
}

func (tr *trap) record(s string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seen = append(tr.seen, s)
}

func (tr *trap) connections() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.seen...)
}
