package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"node/cmd/node/api"
	"node/cmd/node/api/apitest"
	"node/magnet"
	"node/metadata"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// A torrent the fake backend holds, and one it does not.
var (
	knownIH   = strings.Repeat("1a", 20)
	unknownIH = strings.Repeat("2b", 20)
	magnetIH  = strings.Repeat("3c", 20)
)

// start serves b on a loopback port of its own until the test ends.
func start(t testing.TB, b api.Backend) *api.Server {
	t.Helper()
	s, err := api.Listen("127.0.0.1:0", api.ServerConfig{Backend: b, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fakeWithOne() *apitest.Backend {
	b := &apitest.Backend{}
	b.Put(api.Torrent{InfoHash: knownIH, Name: "known", State: api.StateDownloading, Pieces: 4})
	return b
}

// answer is one HTTP answer, its body parsed as JSON when it is.
type answer struct {
	code   int
	header http.Header
	body   []byte
}

// errorText is the answer's {"error": ...}, failing the test unless the
// answer is exactly that, labelled as JSON.
func (a answer) errorText(t *testing.T) string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("HTTP %d: Content-Type %q, want application/json; body %q", a.code, ct, a.body)
	}
	var e map[string]any
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("HTTP %d: body %q is not JSON: %v", a.code, a.body, err)
	}
	msg, ok := e["error"].(string)
	if !ok || msg == "" || len(e) != 1 {
		t.Fatalf("HTTP %d: body %q is not {\"error\": \"...\"}", a.code, a.body)
	}
	return msg
}

type request struct {
	method, path string
	token        string // "" for none
	host         string // "" for the listener's address
	ctype        string
	body         []byte
	header       map[string]string
}

func send(t testing.TB, s *api.Server, r request) answer {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, "http://"+s.Addr().String()+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.host != "" {
		req.Host = r.host
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	// Generous: decoding a 22 MiB body under -race on a loaded 2-core
	// machine took over 10 s; the bound only keeps a hung server from
	// holding the test until the package's timeout.
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var endpoints = []struct {
	method, path string
	body         []byte
	ok           int
}{
	{"GET", "/api/v1/torrents", nil, 200},
	{"POST", "/api/v1/torrents", []byte(`{"magnet":"magnet:?xt=urn:btih:` + magnetIH + `"}`), 201},
	{"GET", "/api/v1/torrents/" + knownIH, nil, 200},
	{"POST", "/api/v1/torrents/" + knownIH + "/pause", nil, 200},
	{"POST", "/api/v1/torrents/" + knownIH + "/resume", nil, 200},
	{"GET", "/api/v1/dht", nil, 200},
	{"DELETE", "/api/v1/torrents/" + knownIH, nil, 204},
}

// TestEndpointsNeedToken: every endpoint answers with the token, and
// without it, or with a wrong one, is a JSON 401 that reaches nothing.
func TestEndpointsNeedToken(t *testing.T) {
	b := fakeWithOne()
	s := start(t, b)
	for _, e := range endpoints {
		for _, tok := range []string{"", "wrong", strings.Repeat("0", 64), testToken + "x", "Bearer"} {
			a := send(t, s, request{method: e.method, path: e.path, token: tok, ctype: "application/json", body: e.body})
			if a.code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: HTTP %d, want 401", e.method, e.path, tok, a.code)
				continue
			}
			if msg := a.errorText(t); !strings.Contains(msg, "token") {
				t.Errorf("401 says %q", msg)
			}
			if a.header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("a 401 carries CORS headers")
			}
		}
		// A token given some other way than the header is no token.
		a := send(t, s, request{method: e.method, path: e.path + "?token=" + testToken, ctype: "application/json", body: e.body})
		if a.code != http.StatusUnauthorized {
			t.Errorf("%s %s with the token in the query: HTTP %d, want 401", e.method, e.path, a.code)
		}
	}
	if len(b.Adds) != 0 || len(b.Removed) != 0 {
		t.Fatalf("requests without the token reached the backend: adds %v, removes %v", b.Adds, b.Removed)
	}
	for _, e := range endpoints {
		a := send(t, s, request{method: e.method, path: e.path, token: testToken, ctype: "application/json", body: e.body})
		if a.code != e.ok {
			t.Errorf("%s %s with the token: HTTP %d %s, want %d", e.method, e.path, a.code, a.body, e.ok)
			continue
		}
		if a.code != http.StatusNoContent {
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q", e.method, e.path, ct)
			}
			if !json.Valid(a.body) {
				t.Errorf("%s %s: body %q is not JSON", e.method, e.path, a.body)
			}
		}
		if a.header.Get("X-Content-Type-Options") != "nosniff" && a.code != http.StatusNoContent {
			t.Errorf("%s %s: no nosniff", e.method, e.path)
		}
	}
	if _, ok := b.Torrent(mustIH(t, knownIH)); ok {
		t.Errorf("DELETE with the token did not remove the torrent")
	}
}

// TestHostCheck: a name that is not loopback's is refused whatever it
// resolves to (DNS rebinding), before the token is even looked at.
func TestHostCheck(t *testing.T) {
	b := fakeWithOne()
	s := start(t, b)
	port := s.Addr().(*net.TCPAddr).Port
	bad := []string{"evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "evil.example:" + strconv.Itoa(port),
		"127.0.0.1.nip.io", "[::1].evil.example", "0.0.0.0", "192.168.1.1", "localhost.", "[fe80::1%lo]",
		"[::1]x", "127.0.0.1:" + strconv.Itoa(port) + "@evil.example"}
	for _, e := range endpoints {
		for _, h := range bad {
			a := send(t, s, request{method: e.method, path: e.path, token: testToken, host: h, ctype: "application/json", body: e.body})
			if a.code != http.StatusForbidden && a.code != http.StatusBadRequest {
				t.Errorf("%s %s Host %q: HTTP %d, want 403", e.method, e.path, h, a.code)
				continue
			}
			if a.code == http.StatusForbidden && !strings.Contains(a.errorText(t), "not allowed") {
				t.Errorf("Host %q: 403 says %s", h, a.body)
			}
		}
	}
	if len(b.Adds) != 0 || len(b.Removed) != 0 {
		t.Fatalf("requests with a foreign Host reached the backend")
	}
	for _, h := range []string{"127.0.0.1", "127.0.0.1:" + strconv.Itoa(port), "localhost:" + strconv.Itoa(port), "LocalHost",
		"[::1]:" + strconv.Itoa(port), "[::1]", "127.1.2.3:80", "[::ffff:127.0.0.1]:" + strconv.Itoa(port)} {
		if a := send(t, s, request{method: "GET", path: "/api/v1/torrents", token: testToken, host: h}); a.code != 200 {
			t.Errorf("Host %q: HTTP %d %s, want 200", h, a.code, a.body)
		}
	}
}

// TestAbsoluteFormRefused: a proxy-style target names a host of its own,
// which would stand in for the Host header: it is refused whatever both
// say.
func TestAbsoluteFormRefused(t *testing.T) {
	s := start(t, fakeWithOne())
	for _, target := range []string{
		"http://evil.example/api/v1/torrents",
		"http://127.0.0.1/api/v1/torrents",
		"http://" + s.Addr().String() + "/api/v1/torrents",
	} {
		for _, host := range []string{"127.0.0.1", "evil.example"} {
			code, body := raw(t, s, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+testToken+"\r\nConnection: close\r\n\r\n")
			if code != http.StatusForbidden && code != http.StatusBadRequest {
				t.Errorf("GET %s Host %s: HTTP %d %s, want 400 or 403", target, host, code, body)
			}
			if !json.Valid([]byte(body)) {
				t.Errorf("GET %s Host %s: body %q is not JSON", target, host, body)
			}
		}
	}
}

// raw sends req as it is and returns the status and body.
func raw(t testing.TB, s *api.Server, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNoCORS: a preflight gets no Access-Control headers, so a browser
// never lets another site's script send the request it asks about.
func TestNoCORS(t *testing.T) {
	s := start(t, fakeWithOne())
	for _, tok := range []string{"", testToken} {
		a := send(t, s, request{method: "OPTIONS", path: "/api/v1/torrents", token: tok, header: map[string]string{
			"Origin":                         "https://evil.example",
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "authorization, content-type",
		}})
		if a.code < 400 {
			t.Errorf("preflight (token %q): HTTP %d, want an error", tok, a.code)
		}
		for k := range a.header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("preflight answer has %s", k)
			}
		}
		a.errorText(t)
	}
	a := send(t, s, request{method: "GET", path: "/api/v1/torrents", token: testToken, header: map[string]string{"Origin": "https://evil.example"}})
	for k := range a.header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("GET answer has %s", k)
		}
	}
}

// TestCrossSitePost: the requests a page of another site can send without
// a preflight (a form, a text/plain fetch) add nothing, even were the
// token known to it (as a cookie would be, for the web page).
func TestCrossSitePost(t *testing.T) {
	b := fakeWithOne()
	s := start(t, b)
	body := []byte(`{"magnet":"magnet:?xt=urn:btih:` + magnetIH + `"}`)
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		a := send(t, s, request{method: "POST", path: "/api/v1/torrents", token: testToken, ctype: ct, body: body})
		if a.code != http.StatusUnsupportedMediaType {
			t.Errorf("POST as %q: HTTP %d %s, want 415", ct, a.code, a.body)
			continue
		}
		if msg := a.errorText(t); !strings.Contains(msg, "application/json") {
			t.Errorf("415 says %q", msg)
		}
	}
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Origin": "http://127.0.0.1:1"}, // another port is another origin
		{"Origin": "null"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
	} {
		a := send(t, s, request{method: "POST", path: "/api/v1/torrents", token: testToken, ctype: "application/json", body: body, header: h})
		if a.code != http.StatusForbidden {
			t.Errorf("POST with %v: HTTP %d %s, want 403", h, a.code, a.body)
			continue
		}
		a.errorText(t)
		a = send(t, s, request{method: "POST", path: "/api/v1/torrents/" + knownIH + "/pause", token: testToken, header: h})
		if a.code != http.StatusForbidden {
			t.Errorf("pause with %v: HTTP %d, want 403", h, a.code)
		}
	}
	if len(b.Adds) != 0 {
		t.Fatalf("a cross-site POST reached the backend: %v", b.Adds)
	}
	if tt, _ := b.Torrent(mustIH(t, knownIH)); tt.State == api.StatePaused {
		t.Fatalf("a cross-site POST paused a torrent")
	}
	// The page itself, same origin, is let through.
	a := send(t, s, request{method: "POST", path: "/api/v1/torrents", token: testToken, ctype: "application/json; charset=utf-8", body: body,
		header: map[string]string{"Origin": "http://" + s.Addr().String(), "Sec-Fetch-Site": "same-origin"}})
	if a.code != http.StatusCreated {
		t.Fatalf("same-origin POST: HTTP %d %s", a.code, a.body)
	}
}

// TestAddErrors: each wrong AddRequest is a clear JSON 4xx, and none
// reaches the backend but those only it can judge.
func TestAddErrors(t *testing.T) {
	b := fakeWithOne()
	s := start(t, b)
	post := func(body []byte) answer {
		if len(body) <= api.MaxBodyBytes {
			return send(t, s, request{method: "POST", path: "/api/v1/torrents", token: testToken, ctype: "application/json", body: body})
		}
		return postEarlyAnswer(t, s, body)
	}
	huge := jsonOf(t, api.AddRequest{Torrent: make([]byte, api.MaxBodyBytes)})
	for _, c := range []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"oversized", huge, http.StatusRequestEntityTooLarge, "over"},
		{"oversized junk", bytes.Repeat([]byte(" "), api.MaxBodyBytes+1), http.StatusRequestEntityTooLarge, "over"},
		{"bad JSON", []byte(`{"magnet":`), http.StatusBadRequest, "bad JSON"},
		{"not an object", []byte(`[1,2]`), http.StatusBadRequest, "bad JSON"},
		{"empty", []byte(``), http.StatusBadRequest, "bad JSON"},
		{"unknown field", []byte(`{"magnet":"magnet:?xt=urn:btih:` + magnetIH + `","evil":1}`), http.StatusBadRequest, "unknown field"},
		{"wrong type", []byte(`{"magnet":5}`), http.StatusBadRequest, "bad JSON"},
		{"torrent not base64", []byte(`{"torrent":"!!"}`), http.StatusBadRequest, "bad JSON"},
		{"neither", []byte(`{"dir":"/tmp"}`), http.StatusBadRequest, "exactly one"},
		{"both", jsonOf(t, api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + magnetIH, Torrent: []byte("d4:infode")}), http.StatusBadRequest, "exactly one"},
		{"two objects", []byte(`{"magnet":"magnet:?xt=urn:btih:` + magnetIH + `"}{"magnet":"x"}`), http.StatusBadRequest, "one JSON object"},
		{"bad magnet", []byte(`{"magnet":"magnet:?xt=urn:btih:zz"}`), http.StatusBadRequest, "magnet"},
		{"bad torrent", jsonOf(t, api.AddRequest{Torrent: []byte("not bencode")}), http.StatusBadRequest, ""},
		{"duplicate", jsonOf(t, api.AddRequest{Magnet: "magnet:?xt=urn:btih:" + knownIH}), http.StatusConflict, "already added"},
	} {
		a := post(c.body)
		if a.code != c.code {
			t.Errorf("%s: HTTP %d %.200s, want %d", c.name, a.code, a.body, c.code)
			continue
		}
		if msg := a.errorText(t); !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, msg, c.want)
		}
	}
	if len(b.Adds) != 3 { // bad magnet, bad torrent, duplicate
		t.Fatalf("%d requests reached the backend, want the 3 only it can judge: %+v", len(b.Adds), b.Adds)
	}
	// The whole body's bound holds for a .torrent at MaxTorrentBytes.
	a := post(jsonOf(t, api.AddRequest{Torrent: make([]byte, api.MaxTorrentBytes), Dir: strings.Repeat("d", 4096)}))
	if a.code != http.StatusBadRequest || len(b.Adds) != 4 {
		t.Fatalf("a .torrent of MaxTorrentBytes: HTTP %d %.200s, want the backend's 400", a.code, a.body)
	}
	if base64.StdEncoding.EncodedLen(api.MaxTorrentBytes)+64<<10 > api.MaxBodyBytes {
		t.Fatalf("MaxTorrentBytes does not fit MaxBodyBytes")
	}
}

// postEarlyAnswer posts body, reading the answer while it writes: the
// server answers an oversized body before reading it all and then hangs
// up, and http.Transport may report the write's reset rather than the
// answer that came before it.
func postEarlyAnswer(t *testing.T, s *api.Server, body []byte) answer {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		fmt.Fprintf(c, "POST /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", testToken, len(body))
		c.Write(body)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// TestPathErrors: an unknown torrent, a bad info-hash, an unknown path and
// a wrong method each get a JSON error with the right status.
func TestPathErrors(t *testing.T) {
	s := start(t, fakeWithOne())
	for _, c := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/api/v1/torrents/" + unknownIH, 404, "no such torrent"},
		{"POST", "/api/v1/torrents/" + unknownIH + "/pause", 404, "no such torrent"},
		{"POST", "/api/v1/torrents/" + unknownIH + "/resume", 404, "no such torrent"},
		{"DELETE", "/api/v1/torrents/" + unknownIH, 404, "no such torrent"},
		{"GET", "/api/v1/torrents/xyz", 400, "info-hash"},
		{"GET", "/api/v1/torrents/" + knownIH + "00", 400, "info-hash"},
		{"POST", "/api/v1/torrents/" + knownIH[:39] + "g/pause", 400, "info-hash"},
		{"DELETE", "/api/v1/torrents/%00", 400, "info-hash"},
		{"DELETE", "/api/v1/torrents/" + knownIH + "?delete_data=maybe", 400, "delete_data"},
		{"GET", "/api/v1/nothing", 404, "no such endpoint"},
		{"GET", "/api/v2/torrents", 404, "no such endpoint"},
		{"GET", "/", 404, "no such endpoint"},
		{"GET", "/metrics", 404, "no such endpoint"},
		{"GET", "/api/v1/torrents/", 404, "no such endpoint"},
		{"PUT", "/api/v1/torrents", 405, "not allowed"},
		{"DELETE", "/api/v1/torrents", 405, "not allowed"},
		{"POST", "/api/v1/dht", 405, "not allowed"},
		{"GET", "/api/v1/torrents/" + knownIH + "/pause", 405, "not allowed"},
		{"PATCH", "/api/v1/torrents/" + knownIH, 405, "not allowed"},
	} {
		a := send(t, s, request{method: c.method, path: c.path, token: testToken})
		if a.code != c.code {
			t.Errorf("%s %s: HTTP %d %s, want %d", c.method, c.path, a.code, a.body, c.code)
			continue
		}
		if msg := a.errorText(t); !strings.Contains(msg, c.want) {
			t.Errorf("%s %s: error %q does not say %q", c.method, c.path, msg, c.want)
		}
		if c.code == 405 && a.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}

// TestTimeoutIsJSON: a Backend that hangs costs the client RequestTimeout
// (shortened here) and answers a JSON 503.
func TestTimeoutIsJSON(t *testing.T) {
	b := fakeWithOne()
	b.Block = make(chan struct{})
	s, err := api.ListenShort("127.0.0.1:0", api.ServerConfig{Backend: b, Token: testToken}, 200*time.Millisecond, time.Minute, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer close(b.Block)
	a := send(t, s, request{method: "GET", path: "/api/v1/torrents", token: testToken})
	if a.code != http.StatusServiceUnavailable {
		t.Fatalf("HTTP %d %s, want 503", a.code, a.body)
	}
	if msg := a.errorText(t); !strings.Contains(msg, "no answer within") {
		t.Fatalf("503 says %q", msg)
	}
}

// TestListenerBounds: Listen's server has the named bounds.
func TestListenerBounds(t *testing.T) {
	s := start(t, fakeWithOne())
	rh, r, w, idle, mh := s.ListenerLimits()
	if rh != api.ReadHeaderTimeout || r != api.ReadTimeout || w != api.WriteTimeout || idle != api.IdleTimeout || mh != api.MaxHeaderBytes {
		t.Fatalf("server limits %v %v %v %v %d", rh, r, w, idle, mh)
	}
	if api.WriteTimeout <= api.RequestTimeout || api.ClientTimeout <= api.RequestTimeout {
		t.Fatalf("the write and client timeouts must outlast the request timeout")
	}
	// An oversized header is refused.
	code, _ := raw(t, s, "GET /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "+strings.Repeat("a", 2*api.MaxHeaderBytes)+"\r\n\r\n")
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized header: HTTP %d", code)
	}
}

// TestSlowloris: a client that sends its header, or its body, a byte at a
// time is cut off after the read timeout (shortened here).
func TestSlowloris(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s, err := api.ListenShort("127.0.0.1:0", api.ServerConfig{Backend: fakeWithOne(), Token: testToken}, time.Minute, timeout, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, start := range []string{
		"GET /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\n",
		"POST /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + testToken +
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
	} {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		if _, err := io.WriteString(c, start); err != nil {
			t.Fatal(err)
		}
		// Dribble a byte per tenth of the timeout until the server hangs up.
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			io.Copy(io.Discard, c)
		}()
		tick := time.NewTicker(timeout / 10)
		giveUp := time.After(20 * timeout)
	dribble:
		for {
			select {
			case <-closed:
				break dribble
			case <-tick.C:
				c.Write([]byte("a"))
			case <-giveUp:
				t.Fatalf("still connected after %v", time.Since(began))
			}
		}
		tick.Stop()
		c.Close()
	}
}

// TestMaxConns: connections beyond the bound wait; they are served once
// others close.
func TestMaxConns(t *testing.T) {
	const max = 4
	s, err := api.ListenShort("127.0.0.1:0", api.ServerConfig{Backend: fakeWithOne(), Token: testToken}, time.Minute, time.Minute, max)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var idle []net.Conn
	for range max {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// One request through them all shows the server has taken each; with
	// the token, so that the server keeps them.
	for _, c := range idle {
		io.WriteString(c, "GET /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "+testToken+"\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	extra, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	io.WriteString(extra, "GET /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "+testToken+"\r\n\r\n")
	got := make(chan error, 1)
	go func() {
		_, err := http.ReadResponse(bufio.NewReader(extra), nil)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("connection %d was served while %d were open (%v)", max+1, max, err)
	case <-time.After(300 * time.Millisecond):
	}
	idle[0].Close()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting connection was not served after one closed")
	}
}

func mustIH(t testing.TB, s string) metadata.InfoHash {
	t.Helper()
	h, err := magnet.ParseInfoHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRefusalsClose: each of the guard's refusals closes its connection,
// so that a client without the token keeps none alive.
func TestRefusalsClose(t *testing.T) {
	s := start(t, fakeWithOne())
	for _, c := range []struct {
		req  string
		code int
		body int // bytes of 'a' after req
	}{
		{"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", http.StatusUnauthorized, 0},
		{"GET /api/v1/torrents HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer " + testToken + "\r\n\r\n", http.StatusForbidden, 0},
		{"GET http://127.0.0.1/api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + testToken + "\r\n\r\n", http.StatusBadRequest, 0},
		{"POST /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\nAuthorization: Bearer " + testToken + "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", http.StatusForbidden, 0},
		{"POST /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + testToken + "\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", http.StatusUnsupportedMediaType, 0},
		{"POST /api/v1/torrents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + testToken + "\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(api.MaxBodyBytes+64) + "\r\n\r\n{\"magnet\":\"", http.StatusRequestEntityTooLarge, api.MaxBodyBytes + 64 - len(`{"magnet":"`)},
	} {
		conn, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			io.WriteString(conn, c.req)
			if c.body > 0 {
				io.Copy(conn, io.LimitReader(endless{[]byte("a")}, int64(c.body)))
			}
		}()
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: %v", c.req[:30], err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != c.code || !resp.Close {
			t.Errorf("%q: HTTP %d, close %v; want %d and close", c.req[:30], resp.StatusCode, resp.Close, c.code)
		}
		// The server hung up: the next read ends, rather than waiting
		// for IdleTimeout.
		if _, err := br.ReadByte(); err == nil {
			t.Errorf("%q: more after the answer", c.req[:30])
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%q (HTTP %d): the connection stayed open", c.req[:30], c.code)
		}
		conn.Close()
	}
}

// TestStrangersCannotFillConns: MaxConns clients without the token, each
// keeping its connection, do not keep the daemon from its user: every
// refusal closes its connection.
func TestStrangersCannotFillConns(t *testing.T) {
	s := start(t, fakeWithOne())
	if s.MaxConns() != api.MaxConns {
		t.Fatalf("Listen bounds connections at %d, want MaxConns %d", s.MaxConns(), api.MaxConns)
	}
	for range api.MaxConns {
		conn, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("HTTP %d without a token", resp.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := client(s, testToken)
	defer c.Close()
	if ts, err := c.List(ctx); err != nil || len(ts) != 1 {
		t.Fatalf("the user, after %d strangers: %v, %v", api.MaxConns, ts, err)
	}
}
