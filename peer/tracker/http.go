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
	first locality // of the first hop, once connected
	begun bool
	from  netip.AddrPort // the least local hop
}

type hopsKey struct{}

// check refuses a connection to a: at the first hop by mayAsk's rule, at
// a redirect if a is more local than the first hop (a public tracker
// must not make us request a page of our router or of this host).
func (h *hops) check(c *Client, a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.begun {
		return c.mayAsk(h.u, a)
	}
	if l := c.classify(a); l < h.first {
		return fmt.Errorf("%w: a redirect from a %s address to %s", ErrLocal, localityName[h.first], a)
	}
	return nil
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

// dial connects to addr for the request whose hops ctx carries. It
// resolves the name itself and checks each address it dials in the
// dialer's Control, after any resolution, so a name that resolves to a
// public address once and to 127.0.0.1 the next time (DNS rebinding)
// gains nothing. It leaves from our address of the tracker's family.
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
	var first error
	for _, ip := range ips {
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
		if l := c.localFor(ip); l.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(l, 0))
		}
		conn, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			if ra, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
				ap := ra.AddrPort()
				h.connected(c, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			}
			return conn, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
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
