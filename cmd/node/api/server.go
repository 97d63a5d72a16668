package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	// RequestTimeout bounds one request from its header's end to its
	// answer's end.
	RequestTimeout = 30 * time.Second
	// MaxHeaderBytes bounds a request's header.
	MaxHeaderBytes = 16 << 10
	// MaxConns bounds the connections open at once.
	MaxConns = 64
)

// ServerConfig is what a Server serves.
type ServerConfig struct {
	Backend Backend
	// Token is required on every request: "Authorization: Bearer TOKEN".
	Token string
	// Page, if set, serves every path outside /api/ and /metrics: the web
	// page.
	Page http.Handler
	// Metrics, if set, serves /metrics.
	Metrics http.Handler
	Logger  *zap.Logger
}

// Handler is the API's HTTP handler, guards included.
func Handler(cfg ServerConfig) http.Handler {
	h := &handler{ServerConfig: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/torrents", h.list)
	mux.HandleFunc("POST /api/v1/torrents", h.add)
	mux.HandleFunc("GET /api/v1/torrents/{ih}", h.get)
	mux.HandleFunc("POST /api/v1/torrents/{ih}/pause", h.pause)
	mux.HandleFunc("POST /api/v1/torrents/{ih}/resume", h.resume)
	mux.HandleFunc("DELETE /api/v1/torrents/{ih}", h.remove)
	mux.HandleFunc("GET /api/v1/dht", h.dht)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errors.New("no such endpoint"))
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Page != nil {
		mux.Handle("/", cfg.Page)
	}
	return h.guard(mux)
}

type handler struct{ ServerConfig }

// guard checks the Host header (DNS rebinding: a page on another name
// that resolves to 127.0.0.1 must not reach us) and the token, and bounds
// the body.
func (h *handler) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q is not allowed: use an IP address of this machine's loopback", r.Host))
			return
		}
		if !h.authorized(r) {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong token"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func (h *handler) authorized(r *http.Request) bool {
	const prefix = "Bearer "
	a := r.Header.Get("Authorization")
	if len(a) <= len(prefix) || a[:len(prefix)] != prefix {
		return false
	}
	return h.Token != "" && subtle.ConstantTimeCompare([]byte(a[len(prefix):]), []byte(h.Token)) == 1
}

// loopbackHost reports whether a Host header names a loopback IP
// (with or without a port), or localhost.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Listen binds addr and serves the API until Close.
func Listen(addr string, cfg ServerConfig) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		srv: &http.Server{
			Handler:           http.TimeoutHandler(Handler(cfg), RequestTimeout, `{"error":"timed out"}`),
			ReadHeaderTimeout: ReadHeaderTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ErrorLog:          zap.NewStdLog(log),
		},
		ln:   netutil.LimitListener(ln, MaxConns),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("API server", zap.Error(err))
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
