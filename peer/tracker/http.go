package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// errRedirect is wrapped by refused redirects.
var errRedirect = errors.New("redirect refused")

// newHTTPClient makes the client HTTP trackers are asked with: no proxy
// from the environment, bounded headers, MaxRedirects redirects without
// loops, to http or https only.
func newHTTPClient(local netip.Addr) *http.Client {
	d := &net.Dialer{Timeout: HTTPTimeout}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	tr := &http.Transport{
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    HTTPTimeout,
		ResponseHeaderTimeout:  HTTPTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        time.Minute,
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
	if r.Event != None {
		q += "&event=" + r.Event.String()
	}
	body, from, err := c.httpGet(ctx, withQuery(u, q))
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
	body, _, err := c.httpGet(ctx, withQuery(su, strings.Join(q, "&")))
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

// httpGet fetches u, reading at most MaxBodySize bytes of its body; it
// returns the address of the server that answered.
func (c *Client) httpGet(ctx context.Context, u string) ([]byte, netip.AddrPort, error) {
	var from netip.AddrPort
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) {
			if a, ok := ci.Conn.RemoteAddr().(*net.TCPAddr); ok {
				from = a.AddrPort()
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, from, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		// The url.Error would repeat the whole query; the caller names
		// the tracker.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return nil, from, fmt.Errorf("%w: %v", ErrTimeout, ue.Err)
			}
			return nil, from, ue.Err
		}
		return nil, from, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil, from, fmt.Errorf("%w: reading the answer: %v", ErrTimeout, err)
		}
		return nil, from, badAnswer("reading the answer: %v", err)
	}
	if len(body) > MaxBodySize {
		return nil, from, badAnswer("answer larger than %d bytes", MaxBodySize)
	}
	if resp.StatusCode != http.StatusOK {
		// A tracker may explain a refusal in a bencoded body.
		if _, perr := ParseAnnounce(body); perr != nil {
			var te *Error
			if errors.As(perr, &te) {
				return nil, from, perr
			}
		}
		return nil, from, badAnswer("HTTP %s", clean(resp.Status))
	}
	return body, from, nil
}
