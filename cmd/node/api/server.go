package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"node/magnet"
	"node/metadata"
)

// Bounds on the API listener: whoever reaches it, token or not, costs at
// most these.
const (
	// MaxBodyBytes bounds a request body: an AddRequest carries a .torrent
	// (metadata allows 16 MiB of info dictionary), base64 in JSON.
	MaxBodyBytes = 24 << 20
	// ReadHeaderTimeout cuts off a client that dawdles over its header.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout cuts off a client that dawdles over its body: a
	// request, header and body, arrives within it.
	ReadTimeout = 30 * time.Second
	// RequestTimeout bounds one request from its header's end to its
	// answer's end.
	RequestTimeout = 30 * time.Second
	// WriteTimeout cuts off a client that does not read its answer.
	WriteTimeout = RequestTimeout + 10*time.Second
	// IdleTimeout closes a kept-alive connection left unused, which would
	// otherwise hold one of MaxConns. Only a client that passed the guard
	// idles: every 4xx answer closes its connection, so a client without
	// the token holds a connection for ReadHeaderTimeout at most.
	IdleTimeout = 30 * time.Second
	// MaxHeaderBytes bounds a request's header.
	MaxHeaderBytes = 16 << 10
	// MaxConns bounds the connections open at once; beyond it, a
	// connection waits to be accepted. An idle connection costs the
	// server a goroutine and its buffers, tens of KiB.
	MaxConns = 256
)

// ServerConfig is what a Server serves.
type ServerConfig struct {
	Backend Backend
	// Token is required on every request but the page's and
	// SessionPath's: "Authorization: Bearer TOKEN", or a session secret
	// (see LoginURL).
	Token string
	// Page, if set, serves every path outside /api/ and /metrics: the web
	// page, with no token (it holds no secret, and logs itself in).
	Page http.Handler
	// Metrics, if set, serves /metrics.
	Metrics http.Handler
	Logger  *zap.Logger
}

// Handler is the API's HTTP handler, guards included.
func Handler(cfg ServerConfig) http.Handler {
	return newHandler(cfg, newLogins())
}

func newHandler(cfg ServerConfig, l *logins) http.Handler {
	h := &handler{ServerConfig: cfg, logins: l}
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/torrents", h.list)
	api.HandleFunc("POST /api/v1/torrents", h.add)
	api.HandleFunc("GET /api/v1/torrents/{ih}", h.get)
	api.HandleFunc("POST /api/v1/torrents/{ih}/pause", h.pause)
	api.HandleFunc("POST /api/v1/torrents/{ih}/resume", h.resume)
	api.HandleFunc("DELETE /api/v1/torrents/{ih}", h.remove)
	api.HandleFunc("GET /api/v1/dht", h.dht)
	api.HandleFunc("POST "+SessionPath, h.session)
	api.HandleFunc("POST "+LoginCodePath, h.loginCode)
	// The API has a mux of its own so that the page, which takes every
	// other path, never answers under /api/: a wrong method there is a
	// 405 and a wrong path a 404, each in JSON.
	mux := http.NewServeMux()
	mux.Handle("/api/", jsonMisses(api))
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Page != nil {
		mux.Handle("/", cfg.Page)
		h.page = func(r *http.Request) bool {
			// What the page's pattern would serve, decided as the mux
			// decides it (an unclean path is the pattern it redirects
			// to), so that no spelling of an API path passes as the
			// page's.
			_, pattern := mux.Handler(r)
			return pattern == "/"
		}
	}
	return closeOnRefusal(h.guard(jsonMisses(mux)))
}

// closeOnRefusal closes the connection after every 4xx answer, each of the
// guard's refusals included: a client without the token must not keep
// one of MaxConns alive for IdleTimeout, and one with it loses nothing
// but a reconnection after a mistake of its own.
func closeOnRefusal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(refusalCloser{w}, r)
	})
}

type refusalCloser struct{ http.ResponseWriter }

func (w refusalCloser) WriteHeader(code int) {
	if code >= 400 && code < 500 {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w refusalCloser) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// jsonMisses serves mux, but answers the requests no pattern matches (404,
// or 405 for a path served under other methods) with a JSON error rather
// than the mux's plain text.
func jsonMisses(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own handler (not found, method not allowed, or a
		// redirect to the cleaned path) says which: keep its status and
		// headers, replace its body.
		rec := &headerRecorder{header: make(http.Header), code: http.StatusOK}
		h.ServeHTTP(rec, r)
		switch rec.code {
		case http.StatusNotFound:
			writeError(w, rec.code, errors.New("no such endpoint"))
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, rec.code, fmt.Errorf("method %s not allowed here: allowed: %s", r.Method, rec.header.Get("Allow")))
		default:
			for _, k := range []string{"Location", "Allow"} {
				if v := rec.header.Get(k); v != "" {
					w.Header().Set(k, v)
				}
			}
			writeError(w, rec.code, errors.New(http.StatusText(rec.code)))
		}
	})
}

// headerRecorder keeps a response's status and headers and drops its body.
type headerRecorder struct {
	header http.Header
	code   int
	wrote  bool
}

func (r *headerRecorder) Header() http.Header { return r.header }

func (r *headerRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *headerRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(p), nil
}

type handler struct {
	ServerConfig
	logins *logins
	// page reports whether a request is for the page, which needs no
	// token; nil: there is no page.
	page func(*http.Request) bool
}

// guard checks the Host header (DNS rebinding: a page on another name
// that resolves to 127.0.0.1 must not reach us), that no other site's page
// sent the request, the token or a session secret (but for the page's
// files and SessionPath), and that a body is JSON (a cross-site form
// or text/plain POST, which browsers send without asking first, is
// neither), and bounds the body.
func (h *handler) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q is not allowed: use an IP address of this machine's loopback", r.Host))
			return
		}
		// An absolute-form target (GET http://host/path) is for proxies;
		// its host, not the Host header's, becomes r.Host, so the check
		// above would judge a name the header does not carry.
		if !strings.HasPrefix(r.RequestURI, "/") {
			writeError(w, http.StatusBadRequest, errors.New("the request target must be a path"))
			return
		}
		if err := cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		public := r.URL.Path == SessionPath || (h.page != nil && h.page(r))
		if !public && !h.authorized(r) {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong token"))
			return
		}
		if r.ContentLength != 0 && !jsonBody(r) {
			writeError(w, http.StatusUnsupportedMediaType, errors.New("a request body must be Content-Type: application/json"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// jsonBody reports whether r's Content-Type is application/json.
func jsonBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// loopbackHost reports whether a Host header names a loopback IP
// (with or without a port; an IPv6 one in brackets), or localhost.
// Anything else, 127.0.0.1.evil.example included, is a name an attacker's
// DNS may point at 127.0.0.1.
func loopbackHost(host string) bool {
	if h, port, err := net.SplitHostPort(host); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	ts, err := h.Backend.List(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	if ts == nil {
		ts = []Torrent{}
	}
	writeJSON(w, http.StatusOK, struct {
		Torrents []Torrent `json:"torrents"`
	}{ts})
}

func (h *handler) add(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad JSON: %v", err))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, errors.New("bad JSON: want one JSON object, and nothing after it"))
		return
	}
	if (req.Magnet == "") == (len(req.Torrent) == 0) {
		writeError(w, http.StatusBadRequest, errors.New("give exactly one of magnet and torrent"))
		return
	}
	t, err := h.Backend.Add(r.Context(), req)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

// infoHash is the {ih} path value, or a 400.
func infoHash(w http.ResponseWriter, r *http.Request) (metadata.InfoHash, bool) {
	h, err := magnet.ParseInfoHash(r.PathValue("ih"))
	if err != nil {
		writeError(w, http.StatusBadRequest, errors.New("bad info-hash: want 40 hex digits"))
		return metadata.InfoHash{}, false
	}
	return metadata.InfoHash(h), true
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	if ih, ok := infoHash(w, r); ok {
		d, err := h.Backend.Get(r.Context(), ih)
		if err == nil {
			d.bound()
		}
		h.reply(w, d, err)
	}
}

func (h *handler) pause(w http.ResponseWriter, r *http.Request) {
	if ih, ok := infoHash(w, r); ok {
		t, err := h.Backend.Pause(r.Context(), ih)
		h.reply(w, t, err)
	}
}

func (h *handler) resume(w http.ResponseWriter, r *http.Request) {
	if ih, ok := infoHash(w, r); ok {
		t, err := h.Backend.Resume(r.Context(), ih)
		h.reply(w, t, err)
	}
}

func (h *handler) remove(w http.ResponseWriter, r *http.Request) {
	ih, ok := infoHash(w, r)
	if !ok {
		return
	}
	del := false
	switch v := r.URL.Query().Get("delete_data"); v {
	case "", "false", "0":
	case "true", "1":
		del = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("delete_data=%q: want true or false", v))
		return
	}
	if err := h.Backend.Remove(r.Context(), ih, del); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) dht(w http.ResponseWriter, r *http.Request) {
	s, err := h.Backend.DHT(r.Context())
	h.reply(w, s, err)
}

func (h *handler) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// fail maps a Backend error to its status code.
func (h *handler) fail(w http.ResponseWriter, err error) {
	var br BadRequest
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrExists):
		writeError(w, http.StatusConflict, err)
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, errors.New("the daemon is busy or stopping"))
	default:
		if h.Logger != nil {
			h.Logger.Warn("API request failed", zap.Error(err))
		}
		writeError(w, http.StatusInternalServerError, err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{err.Error()})
}

// Server is a running API listener.
type Server struct {
	logins   *logins
	srv      *http.Server
	ln       net.Listener
	maxConns int
	done     chan struct{}
}

// Listen binds addr and serves the API until Close.
func Listen(addr string, cfg ServerConfig) (*Server, error) {
	return listen(addr, cfg, defaultLimits)
}

// limits are the listener's bounds; tests shorten them.
type limits struct {
	readHeader, read, request, write, idle time.Duration
	maxConns                               int
}

var defaultLimits = limits{
	readHeader: ReadHeaderTimeout,
	read:       ReadTimeout,
	request:    RequestTimeout,
	write:      WriteTimeout,
	idle:       IdleTimeout,
	maxConns:   MaxConns,
}

func listen(addr string, cfg ServerConfig, lim limits) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	timedOut := fmt.Sprintf(`{"error":"no answer within %v"}`, lim.request)
	l := newLogins()
	s := &Server{
		logins: l,
		srv: &http.Server{
			Handler:           jsonTimeout{http.TimeoutHandler(newHandler(cfg, l), lim.request, timedOut)},
			ReadHeaderTimeout: lim.readHeader,
			ReadTimeout:       lim.read,
			WriteTimeout:      lim.write,
			IdleTimeout:       lim.idle,
			MaxHeaderBytes:    MaxHeaderBytes,
			ErrorLog:          zap.NewStdLog(log),
		},
		ln:       netutil.LimitListener(ln, lim.maxConns),
		maxConns: lim.maxConns,
		done:     make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("API server", zap.Error(err))
		}
	}()
	return s, nil
}

// jsonTimeout labels http.TimeoutHandler's own answer, a 503 whose body is
// JSON but whose headers it leaves empty, as JSON.
type jsonTimeout struct{ h http.Handler }

func (j jsonTimeout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.h.ServeHTTP(timeoutWriter{w}, r)
}

type timeoutWriter struct{ http.ResponseWriter }

func (w timeoutWriter) WriteHeader(code int) {
	if h := w.Header(); code == http.StatusServiceUnavailable && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w timeoutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// NewLoginURL mints a login code and returns the URL that logs a browser
// in with it (see LoginURL).
func (s *Server) NewLoginURL() string {
	code, _ := s.logins.newCode()
	return LoginURL(s.Addr().String(), code)
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
