package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// clock is the logins' time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func listenLogin(t *testing.T) (*Server, *addCounter, *clock) {
	t.Helper()
	b := &addCounter{}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the page") })
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "node_secret_metric 1\n") })
	s, err := Listen("127.0.0.1:0", ServerConfig{Backend: b, Token: loginTestToken, Page: page, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s.logins.mu.Lock()
	s.logins.now = c.now
	s.logins.mu.Unlock()
	return s, b, c
}

var testClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// codeOf is the login code of a login URL.
func codeOf(t *testing.T, login string) string {
	t.Helper()
	u, err := url.Parse(login)
	if err != nil || u.Path != "/" || u.RawQuery != "" || !strings.HasPrefix(u.Fragment, "login=") {
		t.Fatalf("login URL %q: want /#login=CODE", login)
	}
	return strings.TrimPrefix(u.Fragment, "login=")
}

// redeem posts code to SessionPath as the page does, with extra headers
// (a Content-Type among them replaces JSON's), and returns the status
// and the session secret.
func redeem(t *testing.T, s *Server, code string, hdr map[string]string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"code": code})
	req, _ := http.NewRequest("POST", "http://"+s.Addr().String()+SessionPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, b := do(t, req)
	var sess struct {
		Session string `json:"session"`
	}
	json.Unmarshal(b, &sess)
	if resp.StatusCode == http.StatusOK && len(sess.Session) != 2*sessionBytes {
		t.Fatalf("session answer %q", b)
	}
	if resp.StatusCode != http.StatusOK && sess.Session != "" {
		t.Fatalf("HTTP %d with a session: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, sess.Session
}

// authGet is GET path with "Authorization: auth" (none if empty).
func authGet(t *testing.T, s *Server, path, auth string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, _ := do(t, req)
	return resp.StatusCode
}

// TestLoginCodeOnce: a login code buys one session, once; a wrong one
// buys nothing; the session opens the API, and not the minting of codes.
func TestLoginCodeOnce(t *testing.T) {
	s, b, _ := listenLogin(t)
	code := codeOf(t, s.NewLoginURL())
	if len(code) != 2*loginCodeBytes {
		t.Fatalf("code %q", code)
	}
	for _, wrong := range []string{"", "wrong", code[:len(code)-1], code + "0", strings.ToUpper(code), strings.Repeat("0", len(code))} {
		if st, _ := redeem(t, s, wrong, nil); st != http.StatusUnauthorized {
			t.Errorf("code %q: HTTP %d, want 401", wrong, st)
		}
	}
	st, secret := redeem(t, s, code, nil)
	if st != http.StatusOK {
		t.Fatalf("the code: HTTP %d", st)
	}
	if st, _ := redeem(t, s, code, nil); st != http.StatusUnauthorized {
		t.Fatalf("the code again: HTTP %d, want 401", st)
	}
	for _, auth := range []string{"Bearer " + secret, "bearer " + secret, "BEARER  " + secret} {
		if st := authGet(t, s, "/api/v1/torrents", auth); st != http.StatusOK {
			t.Errorf("%q: HTTP %d", auth, st)
		}
	}
	for _, auth := range []string{"", "Bearer " + secret[1:], "Bearer " + code, "Basic " + secret, "Bearer" + secret, secret} {
		if st := authGet(t, s, "/api/v1/torrents", auth); st != http.StatusUnauthorized {
			t.Errorf("%q: HTTP %d, want 401", auth, st)
		}
	}
	// What the page sends to add: JSON, from its own origin.
	base := "http://" + s.Addr().String()
	req, _ := http.NewRequest("POST", base+"/api/v1/torrents", strings.NewReader(`{"magnet":"magnet:?xt=urn:btih:`+strings.Repeat("ab", 20)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Authorization", "Bearer "+secret)
	if resp, body := do(t, req); resp.StatusCode != http.StatusCreated || b.count() != 1 {
		t.Fatalf("the page's add: HTTP %d %s, %d adds", resp.StatusCode, body, b.count())
	}

	// A code takes the token: a session cannot make more of itself.
	mint := func(auth string) (int, LoginCode) {
		req, _ := http.NewRequest("POST", base+LoginCodePath, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, body := do(t, req)
		var lc LoginCode
		json.Unmarshal(body, &lc)
		return resp.StatusCode, lc
	}
	if st, lc := mint("Bearer " + secret); st != http.StatusForbidden || lc.Code != "" {
		t.Errorf("a code minted with a session: HTTP %d %+v, want 403", st, lc)
	}
	if st, lc := mint(""); st != http.StatusUnauthorized || lc.Code != "" {
		t.Errorf("a code minted without a token: HTTP %d %+v, want 401", st, lc)
	}
	st, lc := mint("bearer " + loginTestToken)
	if st != http.StatusOK || lc.URL != LoginURL(s.Addr().String(), lc.Code) || codeOf(t, lc.URL) != lc.Code {
		t.Fatalf("minting a code: HTTP %d %+v", st, lc)
	}
	if st, _ := redeem(t, s, lc.Code, nil); st != http.StatusOK {
		t.Fatalf("a minted code: HTTP %d", st)
	}
	c := NewClient(s.Addr().String(), loginTestToken)
	defer c.Close()
	lc, err := c.NewLoginURL(context.Background())
	if err != nil || codeOf(t, lc.URL) != lc.Code {
		t.Fatalf("Client.NewLoginURL: %+v %v", lc, err)
	}
}

// TestLoginExpiry: a code lasts LoginCodeTTL; a session lasts SessionIdle
// unused and SessionLifetime used.
func TestLoginExpiry(t *testing.T) {
	s, _, c := listenLogin(t)
	late, soon := codeOf(t, s.NewLoginURL()), codeOf(t, s.NewLoginURL())
	c.add(LoginCodeTTL - time.Second)
	st, secret := redeem(t, s, soon, nil)
	if st != http.StatusOK {
		t.Fatalf("a code just before LoginCodeTTL: HTTP %d", st)
	}
	c.add(time.Second)
	if st, _ := redeem(t, s, late, nil); st != http.StatusUnauthorized {
		t.Fatalf("a code at LoginCodeTTL: HTTP %d, want 401", st)
	}

	// Used a little before each SessionIdle, a session lasts until
	// SessionLifetime.
	used := time.Duration(0)
	for used+SessionIdle-time.Minute < SessionLifetime {
		c.add(SessionIdle - time.Minute)
		used += SessionIdle - time.Minute
		if st := authGet(t, s, "/api/v1/dht", "Bearer "+secret); st != http.StatusOK {
			t.Fatalf("a session used every %v, %v after its login: HTTP %d", SessionIdle-time.Minute, used, st)
		}
	}
	c.add(SessionLifetime - used)
	if st := authGet(t, s, "/api/v1/dht", "Bearer "+secret); st != http.StatusUnauthorized {
		t.Fatalf("a session at SessionLifetime: HTTP %d, want 401", st)
	}

	st, idle := redeem(t, s, codeOf(t, s.NewLoginURL()), nil)
	if st != http.StatusOK {
		t.Fatal(st)
	}
	c.add(SessionIdle)
	if st := authGet(t, s, "/api/v1/dht", "Bearer "+idle); st != http.StatusUnauthorized {
		t.Fatalf("a session unused for SessionIdle: HTTP %d, want 401", st)
	}
}

// TestLoginBounds: at most MaxLoginCodes codes and MaxSessions sessions
// are held; the oldest code and the session unused longest make room.
func TestLoginBounds(t *testing.T) {
	s, _, c := listenLogin(t)
	var codes []string
	for range MaxLoginCodes + 1 {
		codes = append(codes, codeOf(t, s.NewLoginURL()))
	}
	s.logins.mu.Lock()
	n := len(s.logins.codes)
	s.logins.mu.Unlock()
	if n != MaxLoginCodes {
		t.Fatalf("%d codes held, want MaxLoginCodes %d", n, MaxLoginCodes)
	}
	if st, _ := redeem(t, s, codes[0], nil); st != http.StatusUnauthorized {
		t.Fatalf("the oldest code beyond MaxLoginCodes: HTTP %d, want 401", st)
	}
	var secrets []string
	for i := range MaxSessions + 1 {
		code := codes[1+i%MaxLoginCodes]
		if i >= MaxLoginCodes {
			code = codeOf(t, s.NewLoginURL())
		}
		st, secret := redeem(t, s, code, nil)
		if st != http.StatusOK {
			t.Fatalf("session %d: HTTP %d", i, st)
		}
		secrets = append(secrets, secret)
		c.add(time.Second)
		if i == MaxSessions-1 {
			// The first session, used last, is not the one to go.
			authGet(t, s, "/api/v1/dht", "Bearer "+secrets[0])
		}
	}
	s.logins.mu.Lock()
	n = len(s.logins.sessions)
	s.logins.mu.Unlock()
	if n != MaxSessions {
		t.Fatalf("%d sessions held, want MaxSessions %d", n, MaxSessions)
	}
	if st := authGet(t, s, "/api/v1/dht", "Bearer "+secrets[1]); st != http.StatusUnauthorized {
		t.Errorf("the session unused longest, beyond MaxSessions: HTTP %d, want 401", st)
	}
	for _, i := range []int{0, 2, MaxSessions} {
		if st := authGet(t, s, "/api/v1/dht", "Bearer "+secrets[i]); st != http.StatusOK {
			t.Errorf("session %d: HTTP %d, want 200", i, st)
		}
	}
}

// TestPageNeedsNoLogin: the page's files load without a login; nothing
// else does, however its path is spelled.
func TestPageNeedsNoLogin(t *testing.T) {
	s, _, _ := listenLogin(t)
	base := "http://" + s.Addr().String()
	for _, p := range []string{"/", "/app.js", "/index.html?x=1"} {
		req, _ := http.NewRequest("GET", base+p, nil)
		if resp, body := do(t, req); resp.StatusCode != http.StatusOK || string(body) != "the page" {
			t.Errorf("GET %s: HTTP %d %q, want the page", p, resp.StatusCode, body)
		}
	}
	for _, p := range []string{"/api/v1/torrents", "/api/v1/dht", "/metrics", "/api/", "/api/v1/nope",
		"/x/../metrics", "/x/../api/v1/torrents", "//metrics", "/./api/v1/dht", "/api/v1/../v1/dht"} {
		req, _ := http.NewRequest("GET", base+p, nil)
		req.URL.Opaque = p // as sent, uncleaned
		resp, body := do(t, req)
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "node_secret_metric") || strings.Contains(string(body), "torrents") {
			t.Errorf("GET %s without a login: HTTP %d %q", p, resp.StatusCode, body)
		}
	}
	// The page and the session are still behind the Host check.
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Host = "evil.example"
	if resp, _ := do(t, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the page with Host evil.example: HTTP %d, want 403", resp.StatusCode)
	}
}

// TestLoginCrossSite: another origin's page (another port of 127.0.0.1
// is one) cannot get a session: it cannot spend a code from its origin,
// nor as a form or text/plain, nor through a rebound name, and such a
// try does not use the code up; no cookie, query or form logs anyone in.
func TestLoginCrossSite(t *testing.T) {
	s, b, _ := listenLogin(t)
	base := "http://" + s.Addr().String()
	code := codeOf(t, s.NewLoginURL())
	for _, h := range []map[string]string{
		{"Origin": "http://127.0.0.1:1"},
		{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},
		{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
		{"Origin": "null"},
		{"Origin": "https://" + s.Addr().String()},
		{"Sec-Fetch-Site": "same-site"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Content-Type": "text/plain"},
		{"Content-Type": "text/plain;charset=UTF-8", "Origin": base, "Sec-Fetch-Site": "same-origin"},
		{"Content-Type": "application/x-www-form-urlencoded"},
		{"Content-Type": "multipart/form-data; boundary=x"},
		{"Content-Type": ""},
		{"Host": "evil.example"},
		{"Host": "127.0.0.1.evil.example:80"},
	} {
		if st, _ := redeem(t, s, code, h); st != http.StatusForbidden && st != http.StatusUnsupportedMediaType {
			t.Errorf("code sent with %v: HTTP %d, want 403 or 415", h, st)
		}
	}
	// A form post of the code, and the code anywhere but a JSON body.
	for _, req := range []*http.Request{
		func() *http.Request {
			r, _ := http.NewRequest("POST", base+SessionPath, strings.NewReader("code="+code))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(),
		func() *http.Request { r, _ := http.NewRequest("GET", base+SessionPath+"?code="+code, nil); return r }(),
		func() *http.Request { r, _ := http.NewRequest("GET", base+"/?login="+code, nil); return r }(),
		func() *http.Request {
			r, _ := http.NewRequest("POST", base+SessionPath+"?code="+code, strings.NewReader("{}"))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(),
	} {
		resp, body := do(t, req)
		if strings.Contains(string(body), `"session"`) || len(resp.Cookies()) != 0 {
			t.Errorf("%s %s: HTTP %d %q, cookies %v", req.Method, req.URL, resp.StatusCode, body, resp.Cookies())
		}
	}
	// None of that spent the code: the page's own request still can.
	st, secret := redeem(t, s, code, map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"})
	if st != http.StatusOK {
		t.Fatalf("the page's own login after the refused tries: HTTP %d", st)
	}

	// The secret is only a secret in the Authorization header: as a
	// cookie (the old login's name or any), in the query, it is nothing.
	for _, req := range []*http.Request{
		func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/api/v1/torrents", nil)
			r.AddCookie(&http.Cookie{Name: "node_login", Value: secret})
			r.AddCookie(&http.Cookie{Name: "session", Value: secret})
			return r
		}(),
		func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/api/v1/torrents?session="+secret, nil)
			return r
		}(),
	} {
		if resp, _ := do(t, req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with the secret outside the header: HTTP %d, want 401", req.URL, resp.StatusCode)
		}
	}

	// With the secret, another origin's requests that change things are
	// still refused before the backend.
	body := `{"magnet":"magnet:?xt=urn:btih:` + strings.Repeat("ab", 20) + `"}`
	for _, tc := range []struct{ contentType, origin, fetchSite string }{
		{"text/plain", "http://evil.example", "cross-site"},
		{"application/json", "http://evil.example", ""},
		{"application/json", "http://127.0.0.1:1", ""},
		{"application/json", "", "same-site"},
		{"application/json", "null", ""},
		{"application/x-www-form-urlencoded", base, "same-origin"},
	} {
		req, _ := http.NewRequest("POST", base+"/api/v1/torrents", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", tc.contentType)
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", tc.fetchSite)
		}
		if resp, _ := do(t, req); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%+v: HTTP %d, want a refusal", tc, resp.StatusCode)
		}
	}
	if n := b.count(); n != 0 {
		t.Fatalf("cross-site requests added %d torrents", n)
	}
}

func TestLoginNeedsAToken(t *testing.T) {
	// A server with no token configured mints no code for an empty
	// token.
	s, err := Listen("127.0.0.1:0", ServerConfig{Backend: &addCounter{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req, _ := http.NewRequest("POST", "http://"+s.Addr().String()+LoginCodePath, nil)
	req.Header.Set("Authorization", "Bearer ")
	if resp, _ := do(t, req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a code for the empty token: HTTP %d, want 401", resp.StatusCode)
	}
}

func TestLoginURL(t *testing.T) {
	for _, tc := range []struct{ addr, code, want string }{
		{"127.0.0.1:8080", "abc", "http://127.0.0.1:8080/#login=abc"},
		{"[::1]:8080", "abc", "http://[::1]:8080/#login=abc"},
		{"0.0.0.0:8080", "abc", "http://127.0.0.1:8080/#login=abc"},
		{"[::]:8080", "abc", "http://127.0.0.1:8080/#login=abc"},
		{":8080", "abc", "http://127.0.0.1:8080/#login=abc"},
	} {
		if got := LoginURL(tc.addr, tc.code); got != tc.want {
			t.Errorf("LoginURL(%q, %q) = %q, want %q", tc.addr, tc.code, got, tc.want)
		}
	}
}

// FuzzSessionBody: whatever a client posts to SessionPath, the answer is
// a JSON refusal, and a session only for the one live code.
func FuzzSessionBody(f *testing.F) {
	for _, s := range []string{`{"code":"CODE"}`, `{"code":""}`, `{}`, `{"code":1}`, `{"code":"CODE","x":1}`,
		`{"code":"CODE"}{}`, `[`, ``, `null`, `{"code":"` + strings.Repeat("a", 2000) + `"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		l := newLogins()
		code, _ := l.newCode()
		h := newHandler(ServerConfig{Backend: &addCounter{}, Token: loginTestToken}, l)
		body = strings.ReplaceAll(body, "CODE", code)
		req := httptest.NewRequest("POST", "http://127.0.0.1:1"+SessionPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("HTTP %d, not JSON: %q", w.Code, w.Body.Bytes())
		}
		switch w.Code {
		case http.StatusOK:
			var want struct{ Code string }
			dec := json.NewDecoder(strings.NewReader(body))
			dec.DisallowUnknownFields()
			if dec.Decode(&want) != nil || want.Code != code {
				t.Fatalf("a session for %q", body)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			if _, ok := v["session"]; ok {
				t.Fatalf("HTTP %d with a session", w.Code)
			}
		default:
			t.Fatalf("HTTP %d for %q", w.Code, body)
		}
	})
}
