package tracker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Progress is what an announce reports of the torrent.
type Progress struct {
	Uploaded, Downloaded, Left int64
	// NeedPeers asks for the next announce sooner (see
	// NeedPeersInterval).
	NeedPeers bool
}

// Config configures an Announcer.
type Config struct {
	// Tiers are BEP 12 tiers of tracker URLs. URLs a Client cannot ask
	// (other schemes) are skipped.
	Tiers    [][]string
	InfoHash [20]byte
	PeerID   [20]byte
	// Port is the port peers reach us on.
	Port uint16
	// Progress is called before each announce; it must not block long.
	Progress func() Progress
	// Client asks the trackers; nil: a new one.
	Client *Client
	Logger *zap.Logger
}

// Announcer announces one torrent to its trackers and streams the peers
// they name.
//
// Every tier runs on its own: within a tier the trackers are shuffled
// once and tried in turn, and one that answers moves to the front
// (BEP 12), but tiers do not wait for each other. BEP 12 would try the
// second tier only once the whole first one failed, so a dead tracker
// in the first tier would hold every peer back by its timeouts; this
// way a tracker that is down or slow costs only its own retries. Within
// a tier too: a UDP tracker that does not answer an attempt is left for
// the next tracker at once, and its next attempt, at the next round,
// waits twice as long (BEP 15's schedule spread over rounds).
type Announcer struct {
	cfg     Config
	tiers   [][]string
	dropped int // URLs beyond MaxTrackers
	key     uint32
	log     *zap.Logger

	done     chan struct{} // closed by Completed
	doneOnce sync.Once
	port     atomic.Uint32 // set by SetPort; 0: cfg.Port

	// Bounds of the intervals; tests shrink them.
	minInterval, maxInterval, retryBase, needPeers time.Duration
}

// NewAnnouncer prepares an Announcer; Run starts it.
func NewAnnouncer(cfg Config) *Announcer {
	if cfg.Client == nil {
		cfg.Client = NewClient("")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Progress == nil {
		cfg.Progress = func() Progress { return Progress{} }
	}
	a := &Announcer{
		cfg: cfg, log: cfg.Logger, done: make(chan struct{}),
		minInterval: MinAnnounceInterval, maxInterval: MaxAnnounceInterval, retryBase: RetryBase,
		needPeers: NeedPeersInterval,
	}
	var b [4]byte
	rand.Read(b[:])
	a.key = binary.BigEndian.Uint32(b[:])
	seen := make(map[string]bool)
	kept := 0
	for _, tier := range cfg.Tiers {
		var t []string
		for _, u := range tier {
			if seen[u] {
				continue
			}
			seen[u] = true
			if err := CheckURL(u); err != nil {
				a.log.Info("skipping tracker", zap.Error(err))
				continue
			}
			if kept == MaxTrackers {
				a.dropped++
				continue
			}
			kept++
			t = append(t, u)
		}
		if len(t) > 0 {
			mrand.Shuffle(len(t), func(i, j int) { t[i], t[j] = t[j], t[i] })
			a.tiers = append(a.tiers, t)
		}
	}
	if a.dropped > 0 {
		a.log.Info("too many trackers: asking the first", zap.Int("asked", kept), zap.Int("dropped", a.dropped))
	}
	return a
}

// Dropped is how many tracker URLs were left out beyond MaxTrackers.
func (a *Announcer) Dropped() int { return a.dropped }

// Trackers is how many trackers Run will ask.
func (a *Announcer) Trackers() int {
	n := 0
	for _, t := range a.tiers {
		n += len(t)
	}
	return n
}

// Client is the Client the Announcer asks with.
func (a *Announcer) Client() *Client { return a.cfg.Client }

// Stats are the counters of the Announcer's Client.
func (a *Announcer) Stats() Stats { return a.cfg.Client.Stats() }

// Completed tells the trackers, at once, that the download completed.
func (a *Announcer) Completed() { a.doneOnce.Do(func() { close(a.done) }) }

// Run announces until ctx is done, sending the peers of each answer on
// peers, one Found per answer; then it tells each tracker that knows us
// that we stopped, within StopTimeout, and returns. It does not close
// peers.
func (a *Announcer) Run(ctx context.Context, peers chan<- Found) {
	var wg sync.WaitGroup
	for _, t := range a.tiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.runTier(ctx, t, peers)
		}()
	}
	wg.Wait()
}

func (a *Announcer) request(ev Event, trackerID string) Request {
	p := a.cfg.Progress()
	return Request{
		InfoHash: a.cfg.InfoHash, PeerID: a.cfg.PeerID, Port: a.currentPort(),
		Uploaded: p.Uploaded, Downloaded: p.Downloaded, Left: p.Left,
		Event: ev, Key: a.key, TrackerID: trackerID,
	}
}

// runTier announces to one tier: to its first tracker that answers.
func (a *Announcer) runTier(ctx context.Context, tier []string, peers chan<- Found) {
	// started: the tracker (tier[0] once it answered) that knows us.
	started := ""
	sentCompleted := false
	done := a.done
	fails := 0
	// attempt is each tracker's next UDP attempt (BEP 15's n): a
	// timeout moves the tier on to its next tracker, and the next
	// round gives this one longer. ids are trackers' "tracker id"s.
	attempt := make(map[string]int)
	ids := make(map[string]string)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if started != "" {
				a.stop(started, ids[started], !sentCompleted && a.isDone())
			}
			return
		case <-done:
			done = nil
			if started == "" {
				// The next announce will say started with nothing
				// left; a tracker that never knew us as a leecher
				// has no completion to count.
				continue
			}
		case <-timer.C:
		}
		var next time.Duration
		ok := false
		for i, u := range tier {
			ev := None
			switch {
			case u != started:
				ev = Started
			case done == nil && !sentCompleted:
				ev = Completed
			}
			n := attempt[u]
			resp, err := a.cfg.Client.announce(ctx, u, a.request(ev, ids[u]), n, n)
			if err == nil && (ev == Completed || (ev == Started && done == nil)) {
				// Answered, so the tracker has it, even if we are
				// stopping now: stop must not say it a second time.
				sentCompleted = true
			}
			if ctx.Err() != nil {
				break
			}
			if err != nil {
				if errors.Is(err, ErrTimeout) {
					attempt[u] = min(n+1, a.cfg.Client.udpAttempts-1)
				}
				a.log.Info("tracker", zap.Error(err))
				continue
			}
			delete(attempt, u)
			if resp.TrackerID != "" {
				ids[u] = resp.TrackerID
			}
			if resp.Warning != "" {
				a.log.Info("tracker warning", zap.String("tracker", u), zap.String("warning", resp.Warning))
			}
			// BEP 12: the tracker that answered goes to the front.
			copy(tier[1:i+1], tier[:i])
			tier[0] = u
			started, ok, fails = u, true, 0
			next = a.interval(resp, a.cfg.Progress().NeedPeers)
			if len(resp.Peers) > 0 {
				select {
				case peers <- Found{Peers: resp.Peers, From: resp.From}:
				case <-ctx.Done():
				}
			}
			break
		}
		if !ok {
			next = a.retry(fails)
			fails++
		}
		timer.Reset(next)
	}
}

// interval is how long to wait after resp: the tracker's interval, or
// its min interval if that is longer, within [MinAnnounceInterval,
// MaxAnnounceInterval]; DefaultAnnounceInterval if it named neither.
// A torrent that needs peers comes back after NeedPeersInterval, or the
// min interval if the tracker asks for a longer one.
func (a *Announcer) interval(resp Response, needPeers bool) time.Duration {
	iv := max(resp.Interval, resp.MinInterval)
	if iv == 0 {
		iv = DefaultAnnounceInterval
	}
	if needPeers {
		iv = min(iv, max(resp.MinInterval, a.needPeers))
	}
	return min(max(iv, a.minInterval), a.maxInterval)
}

// retry is how long a tier waits after its fails+1-th round in a row in
// which no tracker answered.
func (a *Announcer) retry(fails int) time.Duration {
	return min(a.retryBase<<min(fails, 16), MaxRetry)
}

func (a *Announcer) isDone() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// stop tells the tracker at u that we stopped, within StopTimeout, and
// first that we completed if it has not heard yet: a download that ends
// the program at once has still completed.
func (a *Announcer) stop(u, trackerID string, completed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	if completed {
		if _, err := a.cfg.Client.Announce(ctx, u, a.request(Completed, trackerID)); err != nil {
			a.log.Debug("tracker", zap.Error(err))
		}
	}
	if _, err := a.cfg.Client.Announce(ctx, u, a.request(Stopped, trackerID)); err != nil {
		a.log.Debug("tracker", zap.Error(err))
	}
}
