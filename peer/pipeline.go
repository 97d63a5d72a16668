package peer

import (
	"time"

	"node/peer/wire"
)

// Each peer's request pipeline, the blocks asked of it and not yet
// received, is sized from what the peer delivers, much as libtorrent
// sizes its request queue:
//
//	depth = rate × (rtt + min(rtt, requestQueueTime)) / BlockSize
//
// twice the bandwidth-delay product, and at least safePipeline for a peer
// that sends 1 MiB/s or more. libtorrent adds a fixed 3 s of queue to the
// round trip; we add one more round trip (at most those 3 s), because at
// loopback or LAN speeds a fixed 3 s asks for the ceiling whatever the
// distance, and every block in flight is memory held for its piece: a
// near peer needs no deep pipeline, a far one gets its round trip twice.
// A peer that batches its answers (Transmission serves every 500 ms)
// answers a request asked just before a batch at once and one asked after
// it a batch later, so its least wait says nothing of the depth it needs;
// what it serves on top of the round trip is lag, learnt when slow start
// resumes (below), and the depth is then
//
//	depth = rate × (rtt + min(max(rtt, lag), requestQueueTime)) / BlockSize
//
// rate is the payload it sent us, averaged over rateWindow periods; rtt
// is the round trip of a request that found nothing of ours queued at the
// peer (so it measures the path and the peer's service time, not our own
// queue ahead of it). A pipeline that deep keeps a distant or bursty peer
// busy between our requests (a fixed 64 blocks caps a peer at 1 MiB per
// round trip: 10 MiB/s at 100 ms), and one no deeper keeps a slow peer
// from sitting on blocks that others could send.
//
// A new peer starts at initialPipeline and, until its first rate sample,
// grows by one block per block received (libtorrent's slow start),
// doubling every round trip. Past safePipeline it grows only while the
// blocks come back within slowStartDelay round trips: a block that waited
// longer was queued at the peer behind others of ours, so the pipeline
// already holds the 2 × BDP the formula asks for, and growing on would
// only queue more; as the depth has doubled while that block waited, it
// is halved. Without that exit a near peer's pipeline doubles to
// the ceiling within the first rateWindow (a round trip of a few ms is a
// hundred doublings), every peer at once: 4 loopback seeders had 2000
// blocks asked and 50 to 60 pieces in progress within 500 ms, the
// download's peak memory, where the rate that followed needed 65 blocks
// each.
//
// Slow start resumes when a rate window brings slowStartResume times the
// one before while the pipeline was out of slow start, and the peer sat
// on our requests for batchGap in it: the depth, not the peer, held the
// rate back. Against a batching peer the first slow start
// ends after one or two batches (by its first window, or by delay as its
// blocks wait a batch), at four blocks a batch when the least wait is a
// block asked just before one. The resumed slow start measures its delay
// exit against lag, the least wait of the window that resumed it, and ends
// by delay or with the first window but one whose rate grew by less than
// slowStartGrowth (libtorrent leaves slow start when the rate stops
// growing). A near peer that serves as it is asked does not pause so with
// requests out, even when its rate jumps (its first window held the
// connection's start, or it stopped serving others), so the memory its
// pipeline holds is what the delay exit left.
//
// The depth is then held within [minPipeline, ceiling], the ceiling being
// the least of:
//   - maxPipeline, our own bound per peer;
//   - the reqq the peer advertises (a huge one buys nothing more);
//   - half the buffer budget (but not under safePipeline), so that one
//     peer does not hold every block of the pieces in progress;
//   - the peer's stall ceiling: a peer found stalled with requests out
//     (nothing received for stallTime, or a request expired) has them
//     cancelled and re-asked elsewhere, and its pipeline drops to
//     safePipeline, or halves if it was already that shallow;
//   - safePipeline, unless the Fast extension (BEP 6) is negotiated with
//     the peer. anacrolix/torrent v1.59.1 seeders stall for good when
//     asked for more than their per-connection budget (1 MiB by
//     default): a request beyond it waits for a reservation that only
//     the release of earlier ones grants, and its server waits on that
//     request first. A cancel frees a reservation only when Fast is on
//     (it answers a cancel with a reject); without Fast the cancel leaks
//     it and the connection serves nothing more. BEP 6 makes a cancel
//     something a peer must answer, so with it a stall costs one
//     stallTime and the ceiling; without it a deeper pipeline could cost
//     the peer.
//
// Under a download limit the depth is also held to the peer's share of
// pipelineSeconds of the limit (see ratelimit.go).
const (
	requestQueueTime = 3 * time.Second // libtorrent's request_queue_time: the most added to the round trip
	initialPipeline  = 16
	minPipeline      = 4
	// maxPipeline is libtorrent's max_out_request_queue: 8000 KiB per
	// peer, which at 100 ms of round trip is 78 MiB/s.
	maxPipeline = 500
	// safePipeline is a depth every client we know serves: 1 MiB, the
	// budget anacrolix/torrent serves a connection from by default.
	safePipeline = 64
	rateWindow   = 500 * time.Millisecond
	// slowStartDelay is the wait, in round trips, of a block that ends
	// slow start: twice the round trip is a pipeline of twice the
	// bandwidth-delay product, the depth the formula gives.
	slowStartDelay = 2
	// slowStartResume is the growth of the rate from one window to the
	// next that shows the pipeline, not the peer, held it back, and so
	// resumes slow start (with batchGap): a batching peer's rate doubles
	// a window while slow start doubles the depth it answers, and a
	// peer's rate can grow by slowStartGrowth for reasons of its own.
	slowStartResume = 1.5
	// batchGap is the least time a window must go with requests of ours
	// out and no block for slow start to resume: a batching peer's
	// pipeline below what it serves leaves most of each batch period
	// idle, while a near peer that serves as it is asked (whose first
	// window holds the connection's start, so that the next brings
	// slowStartResume times more) delivers without such a pause.
	batchGap = rateWindow / 4
	// slowStartGrowth is libtorrent's: a resumed slow start ends with
	// the first window whose rate grew by less.
	slowStartGrowth = 1.25
	// endgamePipeline is how many of a peer's requests may be endgame
	// duplicates of blocks asked of others (see fillRequests).
	endgamePipeline = 16
	// A peer is stalled after stallBlocks of its expected gaps between
	// blocks with nothing received, and at least minRequestTimeout.
	stallBlocks = 4
)

// pipeline is the sizing state of one peer's request pipeline, owned by
// the loop.
type pipeline struct {
	depth   int // blocks to keep asked
	ceiling int // the stall ceiling; 0 until set
	slow    bool

	// Rate: bytes received since mark; rate in bytes/s, 0 until the first
	// window ends.
	mark  time.Time
	bytes int64
	rate  float64

	// Round trip: probe is the request sent into an empty pipeline, at
	// probeAt; rtt the smoothed estimate, 0 until measured.
	probe   blockKey
	probeAt time.Time
	rtt     time.Duration

	// lag is the wait the peer's own service adds to a request that
	// found none of ours queued (a batching peer's), 0 until a window
	// shows it (see update); sample is the last rate window's, and waits
	// and least the blocks received in this one and the least they
	// waited. flat counts a resumed slow start's windows that did not
	// grow the rate, from -1 (see update).
	lag    time.Duration
	sample float64
	waits  int64
	least  time.Duration
	gap    time.Duration // the longest this window went with requests out and no block
	flat   int

	// lastBlock is when the peer last delivered, or when its pipeline
	// last filled from empty.
	lastBlock time.Time
}

func newPipeline(now time.Time) pipeline {
	return pipeline{depth: initialPipeline, ceiling: maxPipeline, slow: true, mark: now, lastBlock: now}
}

// sent records a request for key; empty says nothing else was asked of
// the peer, so its answer measures the round trip.
func (p *pipeline) sent(key blockKey, now time.Time, empty bool) {
	if empty {
		p.probe, p.probeAt = key, now
		p.lastBlock = now
	}
}

// received records a block of n bytes for key, asked wait ago.
func (p *pipeline) received(key blockKey, n int, wait time.Duration, now time.Time) {
	p.bytes += int64(n)
	p.gap = max(p.gap, now.Sub(p.lastBlock))
	p.lastBlock = now
	if p.waits == 0 || wait < p.least {
		p.least = wait
	}
	p.waits++
	switch {
	case !p.probeAt.IsZero() && key == p.probe:
		p.probeAt = time.Time{}
		if p.rtt == 0 {
			p.rtt = wait
		} else {
			p.rtt += (wait - p.rtt) / 8
		}
	case p.rtt == 0 || wait < p.rtt:
		// No block comes back faster than the round trip.
		p.rtt = wait
	}
	if p.slow {
		if p.depth >= safePipeline && p.rtt > 0 && wait > slowStartDelay*max(p.rtt, p.lag) {
			// This block was asked slowStartDelay round trips ago, when
			// the pipeline held twice the BDP; one block more per block
			// received since has doubled it.
			p.slow = false
			p.depth = max(safePipeline, p.depth/2)
		} else {
			p.depth++
		}
	}
	p.update(now, true)
}

// update ends the rate window if it is over; busy says the peer had
// requests of ours to serve (an idle window says nothing of its rate).
func (p *pipeline) update(now time.Time, busy bool) {
	dt := now.Sub(p.mark)
	if dt < rateWindow {
		return
	}
	if busy || p.bytes > 0 {
		sample := float64(p.bytes) / dt.Seconds()
		grew := p.sample > 0 && sample >= slowStartGrowth*p.sample
		switch {
		case p.rate == 0 || p.slow && grew:
			// The first sample is taken whole, also when slow start
			// ended before it (by delay or a stall), and so is one
			// taken while slow start still grows the rate: the average
			// of a ramp is no rate.
			p.rate = sample
		default:
			p.rate += (sample - p.rate) / 4
		}
		if !p.slow && sample >= slowStartResume*p.sample && p.sample > 0 && p.gap >= batchGap && p.ceiling > safePipeline {
			// The rate rose with the depth while the peer sat on our
			// requests for batchGap, so the pipeline, not the peer,
			// held it back, and the least this window's blocks
			// waited was the peer's own service, not our queue at it:
			// a peer that serves in batches (Transmission: every
			// 500 ms) answers a request asked just before a batch at
			// once and one asked after it a batch later, so the least
			// wait ever, a block asked just before a batch, says
			// nothing of the depth it needs (four blocks a batch,
			// 128 KiB/s). Slow start resumes with its delay exit and
			// the depth measured against this window's least wait,
			// the least ever being kept for the path. A near peer whose
			// rate jumps for reasons of its own, or whose first window
			// held the connection's start, does not pause for batchGap;
			// were it to resume, lag would be its old depth drained at
			// the new rate, and the delay exit would end the resumed
			// slow start within twice that depth.
			p.lag = min(p.least, requestQueueTime)
			p.slow = true
			// From the depth that bought this window's rate (Little's
			// law): the one the window began with may be the few blocks
			// that the least wait gave.
			p.depth = max(p.depth, int(sample*p.lag.Seconds()/wire.BlockSize))
			p.flat = -1
		} else if p.slow && grew {
			p.flat = 0
		} else if p.slow {
			// The first slow start ends with the first window (a near
			// peer's ends sooner, by delay); a resumed one with the
			// first window whose rate grew by less than
			// slowStartGrowth, as libtorrent leaves slow start, but
			// not the window right after it resumed: a batch answers
			// what was asked in the window before.
			p.flat++
			if p.lag == 0 || p.flat > 0 {
				p.slow = false
			}
		}
		p.sample = sample
		if !p.slow {
			bdp := p.rate * (p.rtt + min(max(p.rtt, p.lag), requestQueueTime)).Seconds() / wire.BlockSize
			if p.rate >= safePipeline*wire.BlockSize {
				// 1 MiB/s or more: never shallower than the pipeline
				// every client serves, which a near peer's short round
				// trip alone would not give.
				bdp = max(bdp, safePipeline)
			}
			p.depth = int(min(bdp+1, maxPipeline))
		}
	}
	p.waits, p.least, p.gap = 0, 0, 0
	p.mark, p.bytes = now, 0
}

// stallTime is how long a peer with requests out may deliver nothing.
func (p *pipeline) stallTime() time.Duration {
	d := minRequestTimeout
	if p.rate > 0 {
		gap := time.Duration(float64(time.Second) * wire.BlockSize / p.rate)
		d = max(d, min(stallBlocks*gap, requestTimeout))
	}
	return d
}

// stalled lowers the ceiling of a peer that stopped serving with
// inflight requests out.
func (p *pipeline) stalled(inflight int) {
	if inflight > safePipeline {
		p.ceiling = min(p.ceiling, safePipeline)
	} else {
		p.ceiling = max(minPipeline, min(p.ceiling, inflight)/2)
	}
	p.depth = min(p.depth, p.ceiling)
	p.slow = false
}

// cancelsAnswered reports whether ps must answer our cancels (the Fast
// extension is on both sides), which is what lets its pipeline go deeper
// than safePipeline.
func (t *Torrent) cancelsAnswered(ps *peerState) bool {
	return t.cfg.deepWithoutFast || ps.fast
}

// pipelineDepth is how many requests ps may have outstanding now.
func (t *Torrent) pipelineDepth(ps *peerState) int {
	if t.cfg.fixedPipeline > 0 {
		n := t.cfg.fixedPipeline
		if ps.reqq > 0 {
			n = min(n, ps.reqq)
		}
		return n
	}
	n := max(ps.pipe.depth, minPipeline)
	n = min(n, ps.pipe.ceiling, t.pipelineLimit(), int(max(safePipeline, t.cfg.BufferBudget/2/wire.BlockSize)))
	if ps.reqq > 0 {
		n = min(n, ps.reqq)
	}
	if !t.cancelsAnswered(ps) {
		n = min(n, safePipeline)
	}
	return max(n, 1)
}

// checkStall cancels the requests of a peer that has sat on them for its
// stall time and lowers its ceiling. It reports whether it did.
func (t *Torrent) checkStall(ps *peerState, now time.Time) bool {
	ps.pipe.update(now, len(ps.requests) > 0)
	if len(ps.requests) == 0 || now.Sub(ps.pipe.lastBlock) < ps.pipe.stallTime() {
		return false
	}
	ps.pipe.stalled(len(ps.requests))
	for key := range ps.requests {
		t.cancelRequest(ps, key, now)
	}
	ps.pipe.lastBlock = now
	t.stats.stalls++
	return true
}

// cancelRequest withdraws our request for key from ps: the block may be
// asked of others, and a late answer is no error. A piece only ps was to
// fetch (after a hash failure) is open to others again: ps stopped
// serving it.
func (t *Torrent) cancelRequest(ps *peerState, key blockKey, now time.Time) {
	delete(ps.requests, key)
	ps.cancelled[key] = now
	ps.c.send(&wire.Message{Type: wire.Cancel, Index: uint32(key.piece), Begin: uint32(key.begin), Length: uint32(t.blockLen(key.piece, int(key.begin/wire.BlockSize)))})
	if pc := t.pk.inProgress[key.piece]; pc != nil {
		pc.unask(int(key.begin/wire.BlockSize), ps)
		if pc.owner == ps {
			t.releaseOwner(pc, now)
		}
	}
}
