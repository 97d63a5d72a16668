package krpc

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// Production values for the abuse limits. A zero RatePerIP, SendRate or
// MaxAmplification in Config turns that limit off, so that a Transport
// built with a bare Config (tests, benchmarks, tools) is never throttled;
// a public node (the dht package) sets these explicitly.
const (
	DefaultRatePerIP        = 20 // packets/s accepted from one source
	DefaultBurstPerIP       = 40 // packets one source may send at once
	DefaultMaxTrackedIPs    = 1 << 16
	DefaultBlockFor         = 5 * time.Minute
	DefaultMaxBlockedIPs    = 1 << 14
	DefaultSendRate         = 2000 // packets/s sent, all destinations together
	DefaultSendBurst        = 200
	DefaultMaxAmplification = 4
)

// Fixed parts of the limiting rules.
const (
	// BlockFactor and BlockWindow define "abuse": a source that has
	// BlockFactor × its burst of packets dropped by its rate limit within
	// BlockWindow (counted from its first drop in the window) is blocked
	// for Config.BlockFor. With the defaults that is 120 drops in 10 s,
	// i.e. a sustained ~32 packets/s against an allowance of 20, or any
	// short flood of 160 packets.
	BlockFactor = 3
	BlockWindow = 10 * time.Second

	// AmplificationAllowance is the response size (bytes, as sent) that is
	// always allowed, however small the query: the largest fixed-size
	// answers the BEPs define must get through. Those are 8 compact IPv6
	// nodes (at most 442 bytes with token, ip, t and v) and BEP 33's two
	// 256-byte bloom filters (about 600 bytes with the rest).
	AmplificationAllowance = 640
)

// verdict is what the limiter decides about one incoming datagram.
type verdict uint8

const (
	admitted    verdict = iota
	rateLimited         // over its source's rate; possibly now blocked
	blocked             // its source is blocked
)

// ipState is one source's token bucket and its recent drops.
type ipState struct {
	lim         *rate.Limiter
	drops       int
	windowStart time.Time
}

// limiter is the per-source rate limit and block list. Both tables are
// LRUs of fixed capacity, so memory stays bounded however many sources
// (spoofed or not) send: a source evicted from the rate table comes back
// with a full bucket, and one evicted from the block list is unblocked
// early — the price of the bound.
type limiter struct {
	limit      rate.Limit
	burst      int
	blockFor   time.Duration // <= 0: never block
	blockAfter int

	mu      sync.Mutex
	ips     *simplelru.LRU[netip.Addr, *ipState]
	blocked *simplelru.LRU[netip.Addr, time.Time] // source -> end of block
}

// newLimiter returns nil when cfg sets no per-source rate.
func newLimiter(cfg *Config) *limiter {
	if cfg.RatePerIP <= 0 {
		return nil
	}
	l := &limiter{
		limit:      rate.Limit(cfg.RatePerIP),
		burst:      cfg.BurstPerIP,
		blockFor:   cfg.BlockFor,
		blockAfter: BlockFactor * cfg.BurstPerIP,
	}
	// NewLRU fails only for a size <= 0, which New has ruled out.
	l.ips, _ = simplelru.NewLRU[netip.Addr, *ipState](cfg.MaxTrackedIPs, nil)
	l.blocked, _ = simplelru.NewLRU[netip.Addr, time.Time](cfg.MaxBlockedIPs, nil)
	return l
}

// sourceKey is the address a source is tracked by: the IPv4 address, or
// the /64 prefix of an IPv6 one, since a single host or customer usually
// holds a whole /64 and could otherwise rotate through it.
func sourceKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64) // cannot fail for a valid IPv6 address
		return p.Addr()
	}
	return ip
}

// admit charges one datagram from ip at now. It allocates only for a
// source it does not yet track.
func (l *limiter) admit(ip netip.Addr, now time.Time) verdict {
	k := sourceKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if until, ok := l.blocked.Get(k); ok {
		if now.Before(until) {
			return blocked
		}
		l.blocked.Remove(k)
	}
	st, ok := l.ips.Get(k)
	if !ok {
		st = &ipState{lim: rate.NewLimiter(l.limit, l.burst)} // starts full
		l.ips.Add(k, st)
	}
	if st.lim.AllowN(now, 1) {
		return admitted
	}
	if now.Sub(st.windowStart) >= BlockWindow || now.Before(st.windowStart) {
		st.windowStart, st.drops = now, 0
	}
	st.drops++
	if l.blockFor > 0 && st.drops >= l.blockAfter {
		l.blocked.Add(k, now.Add(l.blockFor))
		l.ips.Remove(k) // once the block ends, the source starts afresh
	}
	return rateLimited
}

// isBlocked reports whether ip is blocked at now.
func (l *limiter) isBlocked(ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.blocked.Peek(sourceKey(ip))
	return ok && now.Before(until)
}

// blockedCount counts sources blocked at now, dropping expired entries.
func (l *limiter) blockedCount(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, k := range l.blocked.Keys() {
		if until, _ := l.blocked.Peek(k); now.Before(until) {
			n++
		} else {
			l.blocked.Remove(k)
		}
	}
	return n
}

// applyLimitDefaults fills the zero-means-default limit fields of cfg.
func applyLimitDefaults(cfg *Config) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RatePerIP > 0 && cfg.BurstPerIP <= 0 {
		cfg.BurstPerIP = max(1, int(math.Ceil(2*cfg.RatePerIP)))
	}
	if cfg.MaxTrackedIPs <= 0 {
		cfg.MaxTrackedIPs = DefaultMaxTrackedIPs
	}
	if cfg.BlockFor == 0 {
		cfg.BlockFor = DefaultBlockFor
	}
	if cfg.MaxBlockedIPs <= 0 {
		cfg.MaxBlockedIPs = DefaultMaxBlockedIPs
	}
	if cfg.SendRate > 0 && cfg.SendBurst <= 0 {
		cfg.SendBurst = sendBurst(cfg.SendRate)
	}
}

func sendBurst(r float64) int { return max(1, int(math.Ceil(r/10))) }

// NewSendLimiter is the send budget Config.SendRate and SendBurst make,
// for Transports to share through Config.SendLimiter; burst 0 means
// rate/10, at least 1.
func NewSendLimiter(r float64, burst int) *rate.Limiter {
	if burst <= 0 {
		burst = sendBurst(r)
	}
	return rate.NewLimiter(rate.Limit(r), burst)
}

// waitSend takes one token from the send budget for a query of ours,
// waiting for it if need be. It gives up, returning the token, when ctx
// ends (or its deadline would pass first) or the Transport closes.
func (t *Transport) waitSend(ctx context.Context) error {
	if t.sendLim == nil {
		return nil
	}
	now := t.cfg.Now()
	r := t.sendLim.ReserveN(now, 1)
	if !r.OK() { // cannot happen: the burst is at least 1
		return errors.New("krpc: send budget has no burst")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		r.CancelAt(now)
		return context.DeadlineExceeded
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		r.CancelAt(t.cfg.Now())
		return ctx.Err()
	case <-t.done:
		r.CancelAt(t.cfg.Now())
		return ErrClosed
	}
}
