package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"node/metadata"
)

// addCounter is a Backend that only counts adds: what the login tests
// need to see whether a request got through.
type addCounter struct {
	mu   sync.Mutex
	adds int
}

func (b *addCounter) Add(ctx context.Context, req AddRequest) (Torrent, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.adds++
	return Torrent{InfoHash: strings.Repeat("ab", 20), State: StateMetadata}, nil
}

func (b *addCounter) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.adds
}

func (b *addCounter) List(context.Context) ([]Torrent, error) { return nil, nil }
func (b *addCounter) Get(context.Context, metadata.InfoHash) (TorrentDetail, error) {
	return TorrentDetail{}, ErrNotFound
}
func (b *addCounter) Pause(context.Context, metadata.InfoHash) (Torrent, error) {
	return Torrent{}, ErrNotFound
}
func (b *addCounter) Resume(context.Context, metadata.InfoHash) (Torrent, error) {
	return Torrent{}, ErrNotFound
}
func (b *addCounter) Remove(context.Context, metadata.InfoHash, bool) error { return ErrNotFound }
func (b *addCounter) DHT(context.Context) (DHTStatus, error)                { return DHTStatus{}, nil }

const loginTestToken = "s3cret-token"

func listenLogin(t *testing.T) (*Server, *addCounter) {
	t.Helper()
	b := &addCounter{}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the page") })
	s, err := Listen("127.0.0.1:0", ServerConfig{Backend: b, Token: loginTestToken, Page: page})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, b
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func TestLoginSetsCookieOnlyForRightToken(t *testing.T) {
	s, _ := listenLogin(t)
	base := "http://" + s.Addr().String()

	for _, u := range []string{
		base + LoginPath,
		base + LoginPath + "?token=",
		base + LoginPath + "?token=wrong",
		base + LoginPath + "?token=" + loginTestToken + "x",
		base + LoginPath + "?token=" + loginTestToken[:len(loginTestToken)-1],
	} {
		resp := get(t, u)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s: status %d, want 401", u, resp.StatusCode)
		}
		if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("GET %s set a cookie: %q", u, c)
		}
	}

	// The right token, but a Host that is not loopback: DNS rebinding
	// must not get a cookie either.
	req, _ := http.NewRequest("GET", LoginURL(s.Addr().String(), loginTestToken), nil)
	req.Host = "evil.example"
	if resp := do(t, req); resp.StatusCode != http.StatusForbidden || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("login with Host evil.example: status %d, cookies %q; want 403 and none", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}

	// The right token by POST: not a login.
	req, _ = http.NewRequest("POST", LoginURL(s.Addr().String(), loginTestToken), nil)
	if resp := do(t, req); resp.StatusCode != http.StatusMethodNotAllowed || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("POST login: status %d, cookies %q; want 405 and none", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}

	resp := get(t, LoginURL(s.Addr().String(), loginTestToken))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: status %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q, want no-referrer", got)
	}
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("login set %d cookies, want 1", len(cs))
	}
	c := cs[0]
	if c.Name != LoginCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie %+v: want %s, HttpOnly, SameSite=Strict, Path=/", c, LoginCookie)
	}
	if c.MaxAge != int(LoginMaxAge/time.Second) {
		t.Errorf("cookie Max-Age %d, want LoginMaxAge %d", c.MaxAge, int(LoginMaxAge/time.Second))
	}
	if c.Value == "" || strings.Contains(c.Value, loginTestToken) {
		t.Errorf("cookie value %q: want an HMAC, not the token", c.Value)
	}
}

func TestLoginNeedsAToken(t *testing.T) {
	// A server with no token configured lets nobody in, not even with an
	// empty token.
	s, err := Listen("127.0.0.1:0", ServerConfig{Backend: &addCounter{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp := get(t, LoginURL(s.Addr().String(), ""))
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("login with no token configured: status %d, cookies %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/api/v1/torrents", nil)
	req.AddCookie(&http.Cookie{Name: LoginCookie, Value: loginCookieValue("")})
	if resp := do(t, req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cookie of the empty token: status %d, want 401", resp.StatusCode)
	}
}

func loginCookie(t *testing.T, s *Server) *http.Cookie {
	t.Helper()
	resp := get(t, LoginURL(s.Addr().String(), loginTestToken))
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("login: %d cookies", len(cs))
	}
	return cs[0]
}

func TestLoginCookieWorksForAPI(t *testing.T) {
	s, b := listenLogin(t)
	base := "http://" + s.Addr().String()
	c := loginCookie(t, s)

	for _, p := range []string{"/", "/api/v1/torrents", "/api/v1/dht"} {
		req, _ := http.NewRequest("GET", base+p, nil)
		if resp := do(t, req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without cookie: %d, want 401", p, resp.StatusCode)
		}
		req.AddCookie(c)
		if resp := do(t, req); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with cookie: %d, want 200", p, resp.StatusCode)
		}
		req, _ = http.NewRequest("GET", base+p, nil)
		req.AddCookie(&http.Cookie{Name: LoginCookie, Value: loginTestToken})
		if resp := do(t, req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with the raw token as cookie: %d, want 401", p, resp.StatusCode)
		}
	}

	// What the page sends: JSON, from its own origin.
	req, _ := http.NewRequest("POST", base+"/api/v1/torrents", strings.NewReader(`{"magnet":"magnet:?xt=urn:btih:`+strings.Repeat("ab", 20)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(c)
	if resp := do(t, req); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the page's add: status %d, want 201", resp.StatusCode)
	}
	if n := b.count(); n != 1 {
		t.Fatalf("%d adds, want 1", n)
	}
}

// TestLoginCookieCrossSite: another site's page, in a browser that has the
// cookie, cannot make the daemon do anything: not with a form, not with a
// text/plain fetch, not from another origin.
func TestLoginCookieCrossSite(t *testing.T) {
	s, b := listenLogin(t)
	base := "http://" + s.Addr().String()
	c := loginCookie(t, s)
	body := `{"magnet":"magnet:?xt=urn:btih:` + strings.Repeat("ab", 20) + `"}`

	for _, tc := range []struct {
		name, contentType, origin, fetchSite string
	}{
		{"text/plain from evil.example", "text/plain", "http://evil.example", "cross-site"},
		{"text/plain, no fetch metadata", "text/plain", "http://evil.example", ""},
		{"JSON from evil.example", "application/json", "http://evil.example", ""},
		{"form from evil.example", "application/x-www-form-urlencoded", "http://evil.example", "cross-site"},
		{"text/plain from our own origin", "text/plain;charset=UTF-8", base, "same-origin"},
		{"no content type, no origin", "", "", ""},
		{"JSON said cross-site", "application/json", "", "cross-site"},
		{"JSON said same-site", "application/json", "", "same-site"},
		{"JSON from https of our host", "application/json", "https://" + s.Addr().String(), ""},
		{"JSON from another port", "application/json", "http://127.0.0.1:1", ""},
		{"JSON from origin null", "application/json", "null", ""},
	} {
		req, _ := http.NewRequest("POST", base+"/api/v1/torrents", strings.NewReader(body))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", tc.fetchSite)
		}
		req.AddCookie(c)
		if resp := do(t, req); !refused(resp.StatusCode) {
			t.Errorf("%s: status %d, want a refusal", tc.name, resp.StatusCode)
		}
		for _, m := range []string{"POST /pause", "POST /resume", "DELETE "} {
			method, suffix, _ := strings.Cut(m, " ")
			req, _ := http.NewRequest(method, base+"/api/v1/torrents/"+strings.Repeat("ab", 20)+suffix, nil)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.fetchSite != "" {
				req.Header.Set("Sec-Fetch-Site", tc.fetchSite)
			}
			req.AddCookie(c)
			if resp := do(t, req); !refused(resp.StatusCode) {
				t.Errorf("%s: %s: status %d, want a refusal before the backend", tc.name, m, resp.StatusCode)
			}
		}
	}
	if n := b.count(); n != 0 {
		t.Fatalf("cross-site requests added %d torrents", n)
	}
}

// refused is a status the guard gives before a request reaches the
// backend (this test's backend answers 404 to all but adds).
func refused(code int) bool {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusUnsupportedMediaType:
		return true
	}
	return false
}

func TestLoginURL(t *testing.T) {
	for _, tc := range []struct{ addr, token, want string }{
		{"127.0.0.1:8080", "abc", "http://127.0.0.1:8080/login?token=abc"},
		{"[::1]:8080", "abc", "http://[::1]:8080/login?token=abc"},
		{"0.0.0.0:8080", "abc", "http://127.0.0.1:8080/login?token=abc"},
		{"[::]:8080", "abc", "http://127.0.0.1:8080/login?token=abc"},
		{":8080", "abc", "http://127.0.0.1:8080/login?token=abc"},
		{"127.0.0.1:8080", "a+b/c=&d", "http://127.0.0.1:8080/login?token=a%2Bb%2Fc%3D%26d"},
	} {
		if got := LoginURL(tc.addr, tc.token); got != tc.want {
			t.Errorf("LoginURL(%q, %q) = %q, want %q", tc.addr, tc.token, got, tc.want)
		}
	}
}
