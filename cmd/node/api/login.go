package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The browser's login. No cookie: a browser scopes cookies by host, not
// port, so any page on any port of 127.0.0.1 (another user's program)
// would receive one. Instead the daemon prints a URL whose fragment holds
// a one-time code (a fragment never reaches a server, a Referer or a
// log); the page trades the code for a session secret (SessionPath),
// keeps it in sessionStorage, which is per origin (scheme, host and
// port), and sends it as "Authorization: Bearer SECRET".
const (
	// SessionPath trades a login code for a session secret: POST
	// {"code": CODE} -> {"session": SECRET}. It needs no token.
	SessionPath = "/api/v1/session"
	// LoginCodePath mints a login code: POST, with the daemon's token
	// -> LoginCode.
	LoginCodePath = "/api/v1/login-code"
	// LoginCodeTTL is how long a login code lasts unused: long enough to
	// copy a URL from a terminal into a browser.
	LoginCodeTTL = 10 * time.Minute
	// MaxLoginCodes bounds the codes outstanding; a new one beyond it
	// replaces the oldest.
	MaxLoginCodes = 16
	// SessionIdle ends a session unused this long (a page polls every
	// second while it is shown).
	SessionIdle = 24 * time.Hour
	// SessionLifetime ends a session this long after its login, used or
	// not.
	SessionLifetime = 30 * 24 * time.Hour
	// MaxSessions bounds the sessions held; a new one beyond it replaces
	// the one unused longest.
	MaxSessions = 64
	// loginCodeBytes and sessionBytes are the random bytes of a code and
	// of a session secret (hex on the wire).
	loginCodeBytes = 16
	sessionBytes   = 32
	// maxSessionBody bounds SessionPath's body: a code and some JSON.
	maxSessionBody = 1 << 10
)

// LoginCode is LoginCodePath's answer.
type LoginCode struct {
	// URL opens the page and logs it in: LoginURL of the address the
	// request reached and the code.
	URL     string    `json:"url"`
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
}

// LoginURL is the URL that opens the page of the API listening on addr
// (host:port, as net.Listener.Addr().String() gives it) and logs it in
// with a login code. An unspecified address (0.0.0.0, ::) becomes
// 127.0.0.1: the Host check only lets loopback names in.
func LoginURL(addr, code string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		addr = net.JoinHostPort(host, port)
	}
	u := url.URL{Scheme: "http", Host: addr, Path: "/", Fragment: "login=" + code}
	return u.String()
}

// NewLoginURL asks the daemon for a login code (it takes the daemon's
// token, not a session) and returns its URL.
func (c *Client) NewLoginURL(ctx context.Context) (LoginCode, error) {
	var lc LoginCode
	return lc, c.call(ctx, http.MethodPost, LoginCodePath, nil, http.StatusOK, &lc)
}

// logins holds the login codes and sessions, in memory: a restart logs
// every browser out, which a new URL (node url) fixes.
type logins struct {
	now      func() time.Time
	mu       sync.Mutex
	codes    []*loginCode
	sessions []*session
}

type loginCode struct {
	code    string
	expires time.Time
}

type session struct {
	secret          string
	created, usedAt time.Time
}

func newLogins() *logins { return &logins{now: time.Now} }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// newCode mints a login code.
func (l *logins) newCode() (string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.dropExpired(now)
	if len(l.codes) >= MaxLoginCodes {
		l.codes = append(l.codes[:0], l.codes[len(l.codes)-MaxLoginCodes+1:]...)
	}
	c := &loginCode{code: randomHex(loginCodeBytes), expires: now.Add(LoginCodeTTL)}
	l.codes = append(l.codes, c)
	return c.code, c.expires
}

// redeem spends a login code on a new session, whose secret it returns;
// "" for a code that is wrong, spent or expired.
func (l *logins) redeem(code string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.dropExpired(now)
	found := -1
	for i, c := range l.codes {
		// Every code compared, in constant time: how long a wrong
		// guess takes says nothing of the codes.
		if subtle.ConstantTimeCompare([]byte(code), []byte(c.code)) == 1 {
			found = i
		}
	}
	if found < 0 || code == "" {
		return ""
	}
	l.codes = append(l.codes[:found], l.codes[found+1:]...)
	if len(l.sessions) >= MaxSessions {
		oldest := 0
		for i, s := range l.sessions {
			if s.usedAt.Before(l.sessions[oldest].usedAt) {
				oldest = i
			}
		}
		l.sessions = append(l.sessions[:oldest], l.sessions[oldest+1:]...)
	}
	s := &session{secret: randomHex(sessionBytes), created: now, usedAt: now}
	l.sessions = append(l.sessions, s)
	return s.secret
}

// valid reports whether secret is a live session's, and counts it as a
// use.
func (l *logins) valid(secret string) bool {
	if secret == "" {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.dropExpired(now)
	var found *session
	for _, s := range l.sessions {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(s.secret)) == 1 {
			found = s
		}
	}
	if found == nil {
		return false
	}
	found.usedAt = now
	return true
}

func (l *logins) dropExpired(now time.Time) {
	codes := l.codes[:0]
	for _, c := range l.codes {
		if now.Before(c.expires) {
			codes = append(codes, c)
		}
	}
	clear(l.codes[len(codes):])
	l.codes = codes
	sessions := l.sessions[:0]
	for _, s := range l.sessions {
		if now.Sub(s.usedAt) < SessionIdle && now.Sub(s.created) < SessionLifetime {
			sessions = append(sessions, s)
		}
	}
	clear(l.sessions[len(sessions):])
	l.sessions = sessions
}

// bearer is the credential of an "Authorization: Bearer X" header; the
// scheme is case-insensitive (RFC 7235).
func bearer(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimLeft(cred, " ")
	return cred, cred != ""
}

// tokenAuthorized reports whether r carries the daemon's token.
func (h *handler) tokenAuthorized(r *http.Request) bool {
	cred, ok := bearer(r)
	return ok && h.Token != "" && subtle.ConstantTimeCompare([]byte(cred), []byte(h.Token)) == 1
}

func (h *handler) authorized(r *http.Request) bool {
	if h.tokenAuthorized(r) {
		return true
	}
	cred, ok := bearer(r)
	return ok && h.logins.valid(cred)
}

// session trades a login code for a session secret. The guard has
// checked the Host and that no other site's page sent it; the body must
// be JSON too, so that only a script of the page's own origin can send
// it (another origin's script would need a preflight, which this server
// never answers).
func (h *handler) session(w http.ResponseWriter, r *http.Request) {
	// The guard's check lets an Origin of our host by any scheme in;
	// this one is the page's, which is plain http.
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		writeError(w, http.StatusForbidden, errors.New("a login must come from the page's own origin"))
		return
	}
	if !jsonBody(r) {
		writeError(w, http.StatusUnsupportedMediaType, errors.New("a request body must be Content-Type: application/json"))
		return
	}
	var req struct {
		Code string `json:"code"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSessionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, errors.New(`bad JSON: want {"code": "..."}`))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, errors.New("bad JSON: want one JSON object, and nothing after it"))
		return
	}
	secret := h.logins.redeem(req.Code)
	if secret == "" {
		writeError(w, http.StatusUnauthorized, errors.New("wrong, used or expired login code: open the URL node daemon printed, or run node url for a new one"))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Session string `json:"session"`
	}{secret})
}

// loginCode mints a login code for the holder of the daemon's token (a
// session may not make more of itself).
func (h *handler) loginCode(w http.ResponseWriter, r *http.Request) {
	if !h.tokenAuthorized(r) {
		writeError(w, http.StatusForbidden, errors.New("a login code takes the daemon's token, not a session"))
		return
	}
	code, exp := h.logins.newCode()
	writeJSON(w, http.StatusOK, LoginCode{URL: LoginURL(r.Host, code), Code: code, Expires: exp.UTC()})
}
