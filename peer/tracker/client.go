package tracker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// Client asks trackers, HTTP(S) and UDP alike. It caches BEP 15
// connection IDs and holds the MaxAnnouncesInFlight places; one Client
// may serve many announcers, which then share them.
type Client struct {
	http      *http.Client
	userAgent string
	local4    netip.Addr // where requests to IPv4 trackers leave from, if valid
	local6    netip.Addr // and to IPv6 ones
	stats     counters
	inFlight  chan struct{}

	// BEP 15 retry schedule; tests shrink it.
	udpBase     time.Duration
	udpAttempts int

	// Tests replace these to place loopback addresses elsewhere and to
	// resolve names without DNS.
	classify func(netip.Addr) locality
	lookup   func(ctx context.Context, host string) ([]netip.Addr, error)

	mu    sync.Mutex
	conns map[string]connID // by tracker address
}

type connID struct {
	id uint64
	at time.Time
}

// NewClient makes a Client; userAgent is sent to HTTP trackers. locals
// are the addresses peers are accepted on, one per family at most
// counts: trackers take the address a request comes from as the
// announcing peer's, so a request to a tracker of a family we listen on
// at a specific address leaves from it. For a family with none (or with
// a wildcard) the system chooses.
func NewClient(userAgent string, locals ...netip.Addr) *Client {
	c := &Client{
		userAgent: userAgent, inFlight: make(chan struct{}, MaxAnnouncesInFlight),
		udpBase: UDPTimeoutBase, udpAttempts: UDPMaxAttempts,
		classify: localityOf, lookup: lookupIP,
		conns: make(map[string]connID),
	}
	for _, ip := range locals {
		ip = ip.Unmap()
		switch {
		case !ip.IsValid() || ip.IsUnspecified():
		case ip.Is4() && !c.local4.IsValid():
			c.local4 = ip
		case ip.Is6() && !c.local6.IsValid():
			c.local6 = ip
		}
	}
	c.http = c.newHTTPClient()
	return c
}

// localFor is the address a request to a leaves from, if we choose.
func (c *Client) localFor(a netip.Addr) netip.Addr {
	if a.Unmap().Is4() {
		return c.local4
	}
	return c.local6
}

func lookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// resolveHost gives the addresses to try for host: itself if it is an
// address, else up to MaxAddrsPerTracker of those the resolver gives,
// the families taking turns (RFC 8305), the resolver's first family
// first: a tracker unreachable over one family, or at one address of a
// round-robin name, is tried at the next.
func (c *Client) resolveHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return nil, fmt.Errorf("%w: %s has a zone", ErrUnsupported, host)
		}
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := c.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	var fams [2][]netip.Addr // the resolver's first family, the other
	seen := make(map[netip.Addr]bool)
	for _, ip := range ips {
		ip = ip.Unmap()
		if ip.Zone() != "" || seen[ip] {
			continue
		}
		seen[ip] = true
		f := 0
		if len(fams[0]) > 0 && fams[0][0].Is4() != ip.Is4() {
			f = 1
		}
		fams[f] = append(fams[f], ip)
	}
	var out []netip.Addr
	for i := 0; len(out) < MaxAddrsPerTracker && i < max(len(fams[0]), len(fams[1])); i++ {
		for _, fam := range fams {
			if i < len(fam) && len(out) < MaxAddrsPerTracker {
				out = append(out, fam[i])
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no address", host)
	}
	return out, nil
}

// mayAsk checks a tracker's address at our first request to it: one on
// loopback or a private network is asked only at the path /announce, as
// libtorrent does for localhost, so that a link cannot make us send
// requests to any other service on this host or our network.
func (c *Client) mayAsk(u *url.URL, a netip.Addr) error {
	if c.classify(a) != localPublic && u.Path != "/announce" {
		return fmt.Errorf("%w: %s is on %s and its path is not /announce", ErrLocal, u.Redacted(), a)
	}
	return nil
}

// acquire takes one of the MaxAnnouncesInFlight places.
func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.inFlight <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) release() { <-c.inFlight }

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

// Announce sends r to the tracker at rawURL, over UDP with the whole
// BEP 15 schedule (up to UDPMaxAttempts attempts).
func (c *Client) Announce(ctx context.Context, rawURL string, r Request) (Response, error) {
	return c.announce(ctx, rawURL, r, 0, c.udpAttempts-1)
}

// announce is Announce with the UDP attempts first to last only.
func (c *Client) announce(ctx context.Context, rawURL string, r Request, first, last int) (Response, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return Response{}, err
	}
	if err := c.acquire(ctx); err != nil {
		return Response{}, fmt.Errorf("announce to %s: %w", u.Redacted(), err)
	}
	defer c.release()
	var resp Response
	if u.Scheme == "udp" {
		resp, err = c.udpAnnounce(ctx, u, r, first, last)
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
	if err := c.acquire(ctx); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u.Redacted(), err)
	}
	defer c.release()
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
