package peer

import (
	"errors"
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
	burst := max(bytesPerSec/limitBurstDiv, wire.BlockSize)
	return rate.NewLimiter(rate.Limit(bytesPerSec), int(min(burst, 1<<30)))
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
	if t.downLimit == nil {
		return maxPipeline
	}
	sources := 0
	for _, ps := range t.peers {
		if !ps.peerChoking && ps.amInterest {
			sources++
		}
	}
	budget := t.cfg.MaxDownloadRate * pipelineSeconds / wire.BlockSize
	return int(max(1, min(int64(maxPipeline), budget/int64(max(sources, 1)))))
}
