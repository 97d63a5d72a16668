package web_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"node/cmd/node/api"
	"node/cmd/node/web"
)

func TestHandlerServesFilesWithTypesAndCSP(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/index.html", "text/html; charset=utf-8", `id="add-form"`},
		{"/app.js", "text/javascript; charset=utf-8", "textContent"},
		{"/style.css", "text/css; charset=utf-8", ".piecemap"},
		{"/icon.svg", "image/svg+xml", "<svg"},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s: %d", method, tc.path, resp.StatusCode)
				continue
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("%s %s: Content-Type %q, want %q", method, tc.path, got, tc.ctype)
			}
			checkSecurityHeaders(t, method+" "+tc.path, resp.Header)
			if method == "GET" && !strings.Contains(string(body), tc.contains) {
				t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
			}
			if method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD %s: %d bytes of body", tc.path, len(body))
			}
		}
	}
	for _, p := range []string{"/nope", "/static/app.js", "/app.js/", "/../web.go", "/favicon.ico"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
		checkSecurityHeaders(t, "GET "+p, resp.Header)
	}
	resp, err := http.Post(srv.URL+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
}

func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %q", what, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
		t.Errorf("%s: CSP %q lets in more than the page itself", what, csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("%s: nosniff %q, frame options %q", what, h.Get("X-Content-Type-Options"), h.Get("X-Frame-Options"))
	}
}

// TestPageThroughGuard: through the API's guard the page's files load
// with no login (they hold no secret) and keep their headers; the API
// needs the session the page gets for a login code.
func TestPageThroughGuard(t *testing.T) {
	const token = "page-token"
	s, err := api.Listen("127.0.0.1:0", api.ServerConfig{Backend: newFakeDaemon(), Token: token, Page: web.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	for _, p := range []string{"/", "/app.js", "/style.css", "/icon.svg"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET %s with no login: %d, want the file", p, resp.StatusCode)
		}
		checkSecurityHeaders(t, "GET "+p, resp.Header)
		if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("GET %s sets cookies %q", p, c)
		}
	}
	resp, err := http.Get(base + "/api/v1/torrents")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the API with no login: %d, want 401", resp.StatusCode)
	}
	login := s.NewLoginURL()
	code := login[strings.Index(login, "#login=")+len("#login="):]
	resp, err = http.Post(base+api.SessionPath, "application/json", strings.NewReader(`{"code":"`+code+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ Session string }
	err = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	for _, p := range []string{"/api/v1/torrents", "/api/v1/dht"} {
		req, _ := http.NewRequest("GET", base+p, nil)
		req.Header.Set("Authorization", "Bearer "+sess.Session)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the session: %d", p, resp.StatusCode)
		}
	}
}

// TestPageHasNoInlineCodeOrExternalReferences checks what the CSP
// enforces, before a browser does: the HTML has no inline script, event
// attribute or style attribute, and nothing refers to another origin; the
// script never parses data as HTML.
func TestPageHasNoInlineCodeOrExternalReferences(t *testing.T) {
	fsys := os.DirFS("static")
	page, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if n.Data == "script" {
				src := ""
				for _, a := range n.Attr {
					if a.Key == "src" {
						src = a.Val
					}
				}
				if src == "" || n.FirstChild != nil {
					t.Errorf("inline script in index.html")
				}
			}
			if n.Data == "style" {
				t.Errorf("inline <style> in index.html")
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
					t.Errorf("<%s %s=...> in index.html: inline code or style", n.Data, a.Key)
				}
				if (a.Key == "src" || a.Key == "href" || a.Key == "action") && external(a.Val) {
					t.Errorf("<%s %s=%q> refers outside the page", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)

	js, err := fs.ReadFile(fsys, "app.js")
	if err != nil {
		t.Fatal(err)
	}
	// The SVG namespace is a name, not a place the page goes.
	code := strings.ReplaceAll(string(js), "'http://www.w3.org/2000/svg'", "")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", "http://", "https://"} {
		if strings.Contains(code, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	css, err := fs.ReadFile(fsys, "style.css")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`@import|url\(`).Match(css) {
		t.Errorf("style.css loads something")
	}
}

func external(u string) bool {
	return strings.Contains(u, ":") || strings.HasPrefix(u, "//")
}
