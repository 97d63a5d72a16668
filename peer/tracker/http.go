package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errRedirect is wrapped by refused redirects.
var errRedirect = errors.New("redirect refused")

// newHTTPClient makes the client HTTP trackers are asked with: no proxy
// from the environment, bounded headers, MaxRedirects redirects without
// loops, to http or https only, every connection made by c.dial.
// Connections are not kept: announces are minutes apart, and a kept one
// would carry a redirect past the checks of dial.
func (c *Client) newHTTPClient() *http.Client {
	tr := &http.Transport{
		DialContext:            c.dial,
		TLSHandshakeTimeout:    HTTPTimeout,
		ResponseHeaderTimeout:  HTTPTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		DisableKeepAlives:      true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   HTTPTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("%w: more than %d", errRedirect, MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: to a %s URL", errRedirect, req.URL.Scheme)
			}
			for _, v := range via {
				if v.URL.String() == req.URL.String() {
					return fmt.Errorf("%w: loop back to %s", errRedirect, req.URL.Redacted())
				}
			}
			if h, ok := req.Context().Value(hopsKey{}).(*hops); ok {
				h.redirected(req.URL)
			}
			return nil
		},
	}
}

// hops is what one request, redirects included, has connected to: the
// state dial checks each new connection against. The context of the
// request carries it.
type hops struct {
	u *url.URL // the tracker's own URL, which mayAsk checks

	mu    sync.Mutex
	to    *url.URL // where the latest redirect leads, if any
	first locality // of the first hop, once connected
	begun bool
	from  netip.AddrPort // the least local hop
}

type hopsKey struct{}

// check refuses a connection to a: at the first hop by mayAsk's rule; at
// a redirect if a is more local than the first hop (a public tracker
// must not make us request a page of our router or of this host), or if
// a is not public and the redirect's path is not one mayAsk allows (a
// local tracker must not lead us to another service of this host or our
// LAN either).
func (h *hops) check(c *Client, a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.begun || h.to == nil {
		return c.mayAsk(h.u, a)
	}
	l := c.classify(a)
	if l < h.first {
		return fmt.Errorf("%w: a redirect from a %s address to %s", ErrLocal, localityName[h.first], a)
	}
	if l != localPublic && h.to.Path != "/announce" && h.to.Path != "/scrape" {
		return fmt.Errorf("%w: a redirect to %s on %s, whose path is not /announce", ErrLocal, h.to.Redacted(), a)
	}
	return nil
}

// redirected records where a redirect leads, for check.
func (h *hops) redirected(u *url.URL) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.to = u
}

// connected records a hop that connected to a.
func (h *hops) connected(c *Client, a netip.AddrPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := c.classify(a.Addr())
	if !h.begun {
		h.first, h.begun = l, true
	}
	if !h.from.IsValid() || l >= c.classify(h.from.Addr()) {
		h.from = a
	}
}

func (h *hops) answeredFrom() netip.AddrPort {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.from
}

var localityName = map[locality]string{localLoopback: "loopback", localPrivate: "private", localPublic: "public"}

// dialFallbackDelay is how long a connection attempt has to itself
// before the tracker's next address is tried beside it (RFC 8305's
// connection attempt delay, Go's own dialer's 300 ms): a dead first
// address, of a family without a route or of a round-robin name, costs
// that much and not the request's whole time.
const dialFallbackDelay = 300 * time.Millisecond

// dial connects to addr for the request whose hops ctx carries. It
// resolves the name itself and checks each address it dials in the
// dialer's Control, after any resolution, so a name that resolves to a
// public address once and to 127.0.0.1 the next time (DNS rebinding)
// gains nothing. The addresses are tried in resolveHost's order, the
// next one started when the last failed or after dialFallbackDelay; the
// first connection made wins. It leaves from our address of the
// tracker's family.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h, _ := ctx.Value(hopsKey{}).(*hops)
	if h == nil {
		return nil, fmt.Errorf("%w: a request without its checks", ErrLocal)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: port %q", ErrUnsupported, portStr)
	}
	ips, err := c.resolveHost(ctx, host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i    int
		conn net.Conn
		err  error
	}
	results := make(chan result, len(ips)) // no attempt waits for us
	started, pending := 0, 0
	start := func() {
		i := started
		started++
		pending++
		go func() {
			conn, err := c.dialOne(ctx, h, netip.AddrPortFrom(ips[i], uint16(port)))
			results <- result{i, conn, err}
		}()
	}
	start()
	fallback := time.NewTimer(dialFallbackDelay)
	defer fallback.Stop()
	errs := make([]error, len(ips))
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				// The others are cancelled; one that connected all
				// the same is closed.
				cancel()
				go func(n int) {
					for range n {
						if l := <-results; l.conn != nil {
							l.conn.Close()
						}
					}
				}(pending)
				if ra, ok := r.conn.RemoteAddr().(*net.TCPAddr); ok {
					ap := ra.AddrPort()
					h.connected(c, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
				}
				return r.conn, nil
			}
			errs[r.i] = r.err
			if started < len(ips) {
				start()
				fallback.Reset(dialFallbackDelay)
			}
		case <-fallback.C:
			if started < len(ips) {
				start()
				fallback.Reset(dialFallbackDelay)
			}
		}
	}
	// The error of the first address, as a dialer of one would say.
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return nil, ctx.Err()
}

// dialOne connects to a if h's checks allow it.
func (c *Client) dialOne(ctx context.Context, h *hops, a netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{
		Timeout: HTTPTimeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			a, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: dialling %q", ErrLocal, address)
			}
			return h.check(c, a.Addr())
		},
	}
	if l := c.localFor(a.Addr()); l.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(l, 0))
	}
	return d.DialContext(ctx, "tcp", a.String())
}

// escape percent-encodes every byte but the unreserved ones: info-hashes
// and peer IDs are raw bytes, and "+" for a space is not understood by
// every tracker.
func escape(b []byte) string {
	const hex = "0123456789ABCDEF"
	var s strings.Builder
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			s.WriteByte(c)
		} else {
			s.WriteByte('%')
			s.WriteByte(hex[c>>4])
			s.WriteByte(hex[c&15])
		}
	}
	return s.String()
}

// withQuery appends q to u's query, keeping what is there (a passkey).
func withQuery(u *url.URL, q string) string {
	v := *u
	if v.RawQuery != "" {
		v.RawQuery += "&" + q
	} else {
		v.RawQuery = q
	}
	return v.String()
}

func (c *Client) httpAnnounce(ctx context.Context, u *url.URL, r Request) (Response, error) {
	q := "info_hash=" + escape(r.InfoHash[:]) + "&peer_id=" + escape(r.PeerID[:]) +
		"&port=" + strconv.Itoa(int(r.Port)) +
		"&uploaded=" + strconv.FormatInt(max(r.Uploaded, 0), 10) +
		"&downloaded=" + strconv.FormatInt(max(r.Downloaded, 0), 10) +
		"&left=" + strconv.FormatInt(max(r.Left, 0), 10) +
		"&compact=1&no_peer_id=1&numwant=" + strconv.Itoa(int(r.numWant())) +
		"&key=" + strconv.FormatUint(uint64(r.Key), 16)
	if r.TrackerID != "" {
		q += "&trackerid=" + escape([]byte(r.TrackerID))
	}
	if r.Event != None {
		q += "&event=" + r.Event.String()
	}
	body, from, err := c.httpGet(ctx, u, withQuery(u, q))
	if err != nil {
		return Response{}, err
	}
	resp, err := ParseAnnounce(body)
	resp.From = from
	return resp, err
}

// scrapeURL is BEP 48's convention: the last path component must begin
// with "announce", which becomes "scrape".
func scrapeURL(u *url.URL) (*url.URL, error) {
	i := strings.LastIndexByte(u.Path, '/')
	if i < 0 || !strings.HasPrefix(u.Path[i+1:], "announce") {
		return nil, fmt.Errorf("%w: %s has no scrape URL", ErrUnsupported, u.Redacted())
	}
	v := *u
	v.Path = u.Path[:i+1] + "scrape" + u.Path[i+1+len("announce"):]
	v.RawPath = ""
	return &v, nil
}

func (c *Client) httpScrape(ctx context.Context, u *url.URL, hashes [][20]byte) ([]ScrapeResult, error) {
	su, err := scrapeURL(u)
	if err != nil {
		return nil, err
	}
	var q []string
	for _, h := range hashes {
		q = append(q, "info_hash="+escape(h[:]))
	}
	body, _, err := c.httpGet(ctx, u, withQuery(su, strings.Join(q, "&")))
	if err != nil {
		return nil, err
	}
	m, err := ParseScrape(body)
	if err != nil {
		return nil, err
	}
	out := make([]ScrapeResult, len(hashes))
	for i, h := range hashes {
		out[i] = m[h]
	}
	return out, nil
}

// httpGet fetches target for the tracker at u (the announce URL, whose
// path mayAsk checks), reading at most MaxBodySize bytes of its body; it
// returns the least local address the request went through.
func (c *Client) httpGet(ctx context.Context, u *url.URL, target string) ([]byte, netip.AddrPort, error) {
	h := &hops{u: u}
	body, err := c.get(context.WithValue(ctx, hopsKey{}, h), target)
	return body, h.answeredFrom(), err
}

func (c *Client) get(ctx context.Context, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		// The url.Error would repeat the whole query; the caller names
		// the tracker.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return nil, fmt.Errorf("%w: %v", ErrTimeout, ue.Err)
			}
			return nil, ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil, fmt.Errorf("%w: reading the answer: %v", ErrTimeout, err)
		}
		return nil, badAnswer("reading the answer: %v", err)
	}
	if len(body) > MaxBodySize {
		return nil, badAnswer("answer larger than %d bytes", MaxBodySize)
	}
	if resp.StatusCode != http.StatusOK {
		// A tracker may explain a refusal in a bencoded body.
		if _, perr := ParseAnnounce(body); perr != nil {
			var te *Error
			if errors.As(perr, &te) {
				return nil, perr
			}
		}
		return nil, badAnswer("HTTP %s", clean(resp.Status))
	}
	return body, nil
}
