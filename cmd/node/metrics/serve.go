package metrics

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"
)

// Bounds on the metrics listener: whoever can reach it, a hostile client
// included, costs at most MaxConns connections held for ReadHeaderTimeout
// each while it dawdles over its request, MaxHeaderBytes of header each,
// and MaxScrapes scrapes at once. A connection serves one request and is
// closed: a scrape every 15 s or more gains nothing from keep-alive, and
// an idle kept-alive connection would hold one of the MaxConns.
const (
	// ReadHeaderTimeout cuts off a client that has not sent its whole
	// request header this long after connecting (slowloris).
	ReadHeaderTimeout = 5 * time.Second
	// WriteTimeout bounds a request from its header's end to its answer's
	// end: a scraper that stops reading is dropped. It is ScrapeTimeout
	// and room to write.
	WriteTimeout = ScrapeTimeout + 10*time.Second
	// MaxHeaderBytes bounds a request's header (net/http allows 4 KiB more
	// before it answers 431).
	MaxHeaderBytes = 8 << 10
	// MaxConns bounds the connections open at once; more wait in the
	// kernel's accept queue.
	MaxConns = 16
	// MaxScrapes bounds the scrapes served at once; more get 503.
	MaxScrapes = 4
)

// Path is where the metrics are served.
const Path = "/metrics"

// NewRegistry returns a registry with the Go runtime's and the process's
// collectors and cs.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.MustRegister(cs...)
	return r
}

// Server serves a registry's metrics over HTTP at Path, and nothing else.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Listen binds addr and serves g at Path until Close. Any address is
// taken: the metrics are counts, nothing secret, and a scraper usually
// runs on another host; the caller decides what to bind.
func Listen(addr string, g prometheus.Gatherer, log *zap.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	mux := http.NewServeMux()
	// GET (and HEAD) only: the mux answers 405 to other methods here and
	// 404 to every other path.
	mux.Handle("GET "+Path, Handler(g, log))
	s := &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: ReadHeaderTimeout,
			WriteTimeout:      WriteTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ErrorLog:          zap.NewStdLog(log),
		},
		ln:   netutil.LimitListener(ln, MaxConns),
		done: make(chan struct{}),
	}
	s.srv.SetKeepAlivesEnabled(false)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server", zap.Error(err))
		}
	}()
	return s, nil
}

// Handler serves g's metrics, at most MaxScrapes at once, each bounded
// in time: for Listen, and for another server that serves Path (node
// daemon's API).
func Handler(g prometheus.Gatherer, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		MaxRequestsInFlight: MaxScrapes,
		Timeout:             WriteTimeout - time.Second,
		ErrorLog:            zap.NewStdLog(log),
	})
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server: it closes the listener and every connection,
// scrapes in progress included, and waits for the server to stop.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
