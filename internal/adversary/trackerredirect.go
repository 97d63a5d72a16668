package adversary

import (
	"net"
	"net/http"
	"sync/atomic"
)

// RedirectTracker is an HTTP tracker on loopback that answers every
// request with a redirect to To, the request's query appended: the
// server-side request forgery of a tracker that sends us to a page of
// our router or of this host, or to a name that resolves there.
type RedirectTracker struct {
	// URL is its announce URL.
	URL string
	// To is where it redirects; the query of each request is appended.
	To string
	// Requests counts the requests received.
	Requests atomic.Int64

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// NewRedirectTracker starts a RedirectTracker on ip (a loopback address).
func NewRedirectTracker(ip, to string) (*RedirectTracker, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	r := &RedirectTracker{To: to, ln: ln, URL: "http://" + ln.Addr().String() + "/announce", done: make(chan struct{})}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Requests.Add(1)
		http.Redirect(w, req, r.To+"?"+req.URL.RawQuery, http.StatusFound)
	})}
	go func() { defer close(r.done); r.srv.Serve(ln) }()
	return r, nil
}

// Addr is the address it listens on.
func (r *RedirectTracker) Addr() string { return r.ln.Addr().String() }

// Close stops it.
func (r *RedirectTracker) Close() {
	r.srv.Close()
	<-r.done
}
