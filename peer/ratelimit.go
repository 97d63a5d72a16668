package peer

import (
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"node/peer/wire"
)

// Rate limits (Config.MaxUploadRate, MaxDownloadRate) are token buckets
// shared by every connection of a torrent. Only the payload of piece
// messages is counted: the protocol's own chatter (requests, haves,
// keep-alives, metadata) is never held back.
//
//   - Upload: a connection's writer takes tokens before it writes a piece
//     message, flushing what it has batched first, so control messages
//     are not held behind the wait.
//   - Download: a connection's reader takes tokens after it has read a
//     piece message, before reading the next one; the kernel's buffers
//     then fill and TCP flow control slows the sender down.
//
// Both waits end at once when the connection closes. Unlimited (0) is a
// nil limiter: a nil check, nothing else.
//
// A RateLimit (Config.UploadLimit, DownloadLimit) is one more bucket,
// shared by every torrent given it: a connection takes its tokens from
// its torrent's bucket and then from the shared one, so it goes at the
// lower of the two rates, and the torrents that share a bucket together
// stay within it.

// limitBurstDiv sets a bucket's depth to 1/limitBurstDiv of a second's
// worth of tokens (at least one block), which bounds how far a burst may
// run ahead of the rate.
const limitBurstDiv = 10

// pipelineSeconds is how much of the download limit's worth of data may
// be requested at once, over all peers: well under requestTimeout, so
// that requests queued behind the limit do not time out.
const pipelineSeconds = 10

var errConnClosed = errors.New("connection closed")

// newLimiter returns a bucket for bytesPerSec, or nil for no limit.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), limitBurst(bytesPerSec))
}

func limitBurst(bytesPerSec int64) int {
	return int(min(max(bytesPerSec/limitBurstDiv, wire.BlockSize), 1<<30))
}

// RateLimit is a cap on piece payload in bytes per second that several
// torrents share (Config.UploadLimit, DownloadLimit): a daemon's global
// limits. A nil RateLimit, or one at 0, is unlimited. Its rate may change
// while torrents use it.
type RateLimit struct {
	l *rate.Limiter
	// taken is the bytes connections have taken from the bucket: what
	// went through it.
	taken atomic.Int64
}

// NewRateLimit returns a shared limit of bytesPerSec; 0 (or less) is
// unlimited until SetRate sets one.
func NewRateLimit(bytesPerSec int64) *RateLimit {
	r := &RateLimit{l: rate.NewLimiter(rate.Inf, 0)}
	r.SetRate(bytesPerSec)
	return r
}

// SetRate changes the limit; 0 (or less) lifts it. Connections waiting
// for tokens finish the wait they were given, at most a burst's worth
// (a tenth of a second) at the old rate.
func (r *RateLimit) SetRate(bytesPerSec int64) {
	if r == nil {
		return
	}
	if bytesPerSec <= 0 {
		r.l.SetLimit(rate.Inf)
		return
	}
	// Burst first: a limit set before its burst would briefly let a
	// bucket of the old depth fill at the new rate.
	r.l.SetBurst(limitBurst(bytesPerSec))
	r.l.SetLimit(rate.Limit(bytesPerSec))
}

// Rate is the limit in bytes per second, 0 when unlimited.
func (r *RateLimit) Rate() int64 {
	if r == nil || r.l.Limit() == rate.Inf {
		return 0
	}
	return int64(r.l.Limit())
}

// Taken is the piece payload in bytes that has gone through the limit,
// over every torrent sharing it: what a test, or a metric, can hold
// against the rate.
func (r *RateLimit) Taken() int64 {
	if r == nil {
		return 0
	}
	return r.taken.Load()
}

// limits are the buckets a connection takes its tokens from, the
// torrent's own first; empty when the torrent has none.
type limits struct {
	own    *rate.Limiter
	shared *RateLimit
}

// on reports whether some bucket may hold a connection back.
func (ls limits) on() bool {
	return ls.own != nil || ls.shared != nil && ls.shared.l.Limit() != rate.Inf
}

// wait takes n tokens from every bucket in turn (see waitTokens).
func (ls limits) wait(n int, closed <-chan struct{}, beforeSleep func() error) error {
	if ls.own != nil {
		if err := waitTokens(ls.own, n, closed, beforeSleep); err != nil {
			return err
		}
	}
	if ls.shared != nil {
		if err := waitTokens(ls.shared.l, n, closed, beforeSleep); err != nil {
			return err
		}
		ls.shared.taken.Add(int64(n))
	}
	return nil
}

// rate is the lowest of the limits now, 0 without any.
func (ls limits) rate() int64 {
	var r int64
	if ls.own != nil {
		r = int64(ls.own.Limit())
	}
	if s := ls.shared.Rate(); s > 0 && (r == 0 || s < r) {
		r = s
	}
	return r
}

// waitTokens takes n tokens from l, in chunks no larger than its burst,
// sleeping as needed. Before the first sleep it calls beforeSleep (the
// writer flushes its batch there). It returns errConnClosed, giving back
// the tokens of the pending chunk, if closed is closed first.
func waitTokens(l *rate.Limiter, n int, closed <-chan struct{}, beforeSleep func() error) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n > 0 {
		if l.Limit() == rate.Inf {
			// Lifted (RateLimit.SetRate), perhaps while we waited: its
			// burst may be 0, which no chunk would fit.
			return nil
		}
		k := min(n, l.Burst())
		n -= k
		r := l.ReserveN(time.Now(), k)
		if !r.OK() {
			return errors.New("rate limiter refused a reservation") // cannot happen: k <= burst
		}
		d := r.Delay()
		if d <= 0 {
			continue
		}
		if beforeSleep != nil {
			if err := beforeSleep(); err != nil {
				r.Cancel()
				return err
			}
			beforeSleep = nil
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-closed:
			r.Cancel()
			return errConnClosed
		}
	}
	return nil
}

// pipelineLimit caps the requests outstanding to one peer so that, under
// a download limit, everything requested from all the peers that unchoke
// us can arrive within pipelineSeconds; pipelineDepth applies it. Without
// a limit it is maxPipeline and costs nothing.
func (t *Torrent) pipelineLimit() int {
	limit := t.downLimit.rate()
	if limit == 0 {
		return maxPipeline
	}
	sources := 0
	for _, ps := range t.peers {
		if !ps.peerChoking && ps.amInterest {
			sources++
		}
	}
	budget := limit * pipelineSeconds / wire.BlockSize
	return int(max(1, min(int64(maxPipeline), budget/int64(max(sources, 1)))))
}
