package tracker

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// Client asks trackers, HTTP(S) and UDP alike. It caches BEP 15
// connection IDs; one Client may serve many announcers.
type Client struct {
	http      *http.Client
	userAgent string
	local     netip.Addr
	stats     counters

	// BEP 15 retry schedule; tests shrink it.
	udpBase     time.Duration
	udpAttempts int

	mu    sync.Mutex
	conns map[string]connID // by tracker address
}

type connID struct {
	id uint64
	at time.Time
}

// NewClient makes a Client; userAgent is sent to HTTP trackers. A valid
// local address is the one requests leave from: trackers take the
// address a request comes from as the announcing peer's, so it must be
// the one peers are accepted on. Otherwise the system chooses.
func NewClient(userAgent string, local netip.Addr) *Client {
	if local.IsUnspecified() {
		local = netip.Addr{}
	}
	return &Client{
		http: newHTTPClient(local), userAgent: userAgent, local: local,
		udpBase: UDPTimeoutBase, udpAttempts: UDPMaxAttempts,
		conns: make(map[string]connID),
	}
}

// CloseIdle closes the HTTP connections kept for the next request.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// Stats returns the counters of everything this Client asked.
func (c *Client) Stats() Stats { return c.stats.snapshot() }

// parseURL accepts http, https and udp tracker URLs.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "udp":
		if u.Port() == "" {
			return nil, fmt.Errorf("%w: %s has no port", ErrUnsupported, u.Redacted())
		}
	default:
		return nil, fmt.Errorf("%w: scheme %q", ErrUnsupported, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %s has no host", ErrUnsupported, u.Redacted())
	}
	return u, nil
}

// CheckURL reports whether raw is a tracker URL a Client can ask.
func CheckURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

// Announce sends r to the tracker at rawURL.
func (c *Client) Announce(ctx context.Context, rawURL string, r Request) (Response, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return Response{}, err
	}
	var resp Response
	if u.Scheme == "udp" {
		resp, err = c.udpAnnounce(ctx, u, r)
	} else {
		resp, err = c.httpAnnounce(ctx, u, r)
	}
	c.stats.count(err)
	if err != nil {
		c.stats.announceErrors.Add(1)
		return Response{}, fmt.Errorf("announce to %s: %w", u.Redacted(), err)
	}
	c.stats.announces.Add(1)
	c.stats.peersFound.Add(uint64(len(resp.Peers)))
	c.stats.peersDropped.Add(uint64(resp.Dropped))
	return resp, nil
}

// Scrape asks the tracker at rawURL about hashes (at most 74, BEP 15's
// limit for one packet); the results are in their order, zero for a
// torrent the tracker does not know.
func (c *Client) Scrape(ctx context.Context, rawURL string, hashes ...[20]byte) ([]ScrapeResult, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if len(hashes) == 0 || len(hashes) > maxScrapeHashes {
		return nil, fmt.Errorf("scrape: %d info-hashes, want 1 to %d", len(hashes), maxScrapeHashes)
	}
	var out []ScrapeResult
	if u.Scheme == "udp" {
		out, err = c.udpScrape(ctx, u, hashes)
	} else {
		out, err = c.httpScrape(ctx, u, hashes)
	}
	c.stats.count(err)
	if err != nil {
		c.stats.scrapeErrors.Add(1)
		return nil, fmt.Errorf("scrape %s: %w", u.Redacted(), err)
	}
	c.stats.scrapes.Add(1)
	return out, nil
}
