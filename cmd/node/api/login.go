package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/url"
	"time"
)

// The browser's login: a page cannot be given an Authorization header on
// navigation, so GET LoginPath?token=TOKEN trades the token for a cookie.
const (
	// LoginPath is where the browser logs in.
	LoginPath = "/login"
	// LoginCookie is the cookie's name; its value is loginCookieValue of
	// the token, never the token itself, so a cookie that leaks (a browser
	// profile copied somewhere) does not give the bearer token away.
	LoginCookie = "node_login"
	// LoginMaxAge is how long the browser keeps the cookie: long enough
	// that a daemon that runs for months does not ask every morning; the
	// token, not the cookie, is the secret that lasts.
	LoginMaxAge = 30 * 24 * time.Hour
)

// loginLabel keys the cookie's HMAC so that the cookie value is not
// useful as anything but this cookie.
const loginLabel = "node daemon web login v1"

// LoginURL is the URL that logs a browser in to the API listening on
// addr (host:port, as net.Listener.Addr().String() gives it). An
// unspecified address (0.0.0.0, ::) becomes 127.0.0.1: the Host check
// only lets loopback names in.
func LoginURL(addr, token string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		addr = net.JoinHostPort(host, port)
	}
	u := url.URL{Scheme: "http", Host: addr, Path: LoginPath, RawQuery: url.Values{"token": {token}}.Encode()}
	return u.String()
}

func loginCookieValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(loginLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// login sets the cookie for the right token and sends the browser to the
// page; a wrong or missing token gets a 401 and no cookie.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	// The token is in the URL: keep it out of any Referer the next page
	// would send and out of caches.
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, errors.New("log in with GET "+LoginPath+"?token=TOKEN"))
		return
	}
	tok := r.URL.Query().Get("token")
	if h.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(h.Token)) != 1 {
		writeError(w, http.StatusUnauthorized, errors.New("wrong token: use the login URL node daemon printed"))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     LoginCookie,
		Value:    loginCookieValue(h.Token),
		Path:     "/",
		MaxAge:   int(LoginMaxAge / time.Second),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// cookieAuthorized reports whether r carries the login cookie and, if it
// changes anything, looks like the page's own request: SameSite=Strict
// keeps the cookie off other sites' requests in today's browsers, and
// this holds even where it does not. A request that changes state must
// come from our own origin when it says where it comes from (Origin,
// Sec-Fetch-Site) and must be JSON, which no HTML form can send and
// which a cross-origin script can send only after a CORS preflight that
// this server never answers.
func (h *handler) cookieAuthorized(r *http.Request) bool {
	c, err := r.Cookie(LoginCookie)
	if err != nil || h.Token == "" {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(loginCookieValue(h.Token))) != 1 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "http" || u.Host != r.Host {
			return false
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
