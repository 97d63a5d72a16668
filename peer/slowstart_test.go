package peer

import (
	"testing"
	"time"

	"node/peer/wire"
)

// simulateSlowStart runs one peer's pipeline against a model of the path
// and the peer: a request reaches the peer half a round trip after it is
// sent, the peer sends one block every 1/rate, first come first served,
// and the block arrives half a round trip later. Our side keeps the
// pipeline's depth of requests out, as fillRequests does. It returns the
// depth when slow start ended, the most requests out at once before
// that, and whether the end came before the first rate window's (so by
// slowStartDelay, not by the window). The clock is the model's own.
func simulateSlowStart(t *testing.T, rtt time.Duration, rate float64) (depth, peak int, byDelay bool) {
	t.Helper()
	start := time.Unix(1e9, 0)
	p := newPipeline(start)
	service := time.Duration(float64(time.Second) * wire.BlockSize / rate)
	type req struct {
		key    blockKey
		sent   time.Time
		arrive time.Time // at our side
	}
	var out []req // in the order the peer serves them
	var peerFree time.Time
	next := 0
	send := func(now time.Time) {
		for len(out) < max(p.depth, minPipeline) {
			key := blockKey{next / 64, int64(next%64) * wire.BlockSize}
			next++
			p.sent(key, now, len(out) == 0)
			at := now.Add(rtt / 2)
			if peerFree.After(at) {
				at = peerFree
			}
			leave := at.Add(service)
			peerFree = leave
			out = append(out, req{key, now, leave.Add(rtt / 2)})
		}
		peak = max(peak, len(out))
	}
	send(start)
	for p.slow {
		if next > 1<<20 {
			t.Fatal("slow start did not end")
		}
		r := out[0]
		out = out[1:]
		p.received(r.key, wire.BlockSize, r.arrive.Sub(r.sent), r.arrive)
		if !p.slow {
			return p.depth, peak, r.arrive.Sub(start) < rateWindow
		}
		send(r.arrive)
	}
	return p.depth, peak, false
}

// Slow start ends once blocks wait slowStartDelay round trips, so a near
// peer's pipeline stops at about safePipeline instead of doubling to the
// ceiling within the first rate window, while a far one still grows to
// twice its bandwidth-delay product, the depth the formula then keeps.
func TestSlowStartEndsOnDelay(t *testing.T) {
	for _, tc := range []struct {
		name         string
		rtt          time.Duration
		rate         float64 // bytes/s
		minD, maxD   int     // the depth when slow start ends
		maxAskedOnce int
	}{
		// A loopback seeder: 1 ms, 100 MiB/s is a BDP of 6.4 blocks.
		{"near fast", time.Millisecond, 100 << 20, safePipeline, safePipeline, safePipeline + 2},
		// 10 ms at 50 MiB/s: 32 blocks.
		{"LAN", 10 * time.Millisecond, 50 << 20, safePipeline, safePipeline + 8, 3 * safePipeline},
		// 40 ms at 40 MiB/s: 102 blocks, so about 205 wanted.
		{"far", 40 * time.Millisecond, 40 << 20, 180, 230, 450},
		// 100 ms at 40 MiB/s: 256 blocks, 512 wanted. Slow start reaches
		// the BDP (no queue yet) when the first rate window ends it.
		{"farther", 100 * time.Millisecond, 40 << 20, safePipeline, maxPipeline, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			depth, peak, byDelay := simulateSlowStart(t, tc.rtt, tc.rate)
			t.Logf("slow start ended at depth %d (by delay %v), %d requests out at most", depth, byDelay, peak)
			if depth < tc.minD || depth > tc.maxD {
				t.Fatalf("slow start ended at depth %d, want %d to %d", depth, tc.minD, tc.maxD)
			}
			if peak > tc.maxAskedOnce {
				t.Fatalf("%d requests out at once, want at most %d", peak, tc.maxAskedOnce)
			}
			if tc.name != "farther" && !byDelay {
				t.Fatal("slow start ended by the rate window, not by the blocks' delay")
			}
		})
	}
}

// simulateBatcher runs one peer's pipeline against a peer that serves in
// batches, as Transmission does: every period (from phase) it sends the
// requests that have reached it, first come first served, at most
// upload × period of them, back to back at upload; the rest wait for the
// next batch. The path is rtt long, and our side keeps the pipeline's
// depth of requests out within the peer's reqq and maxPipeline, as
// pipelineDepth does. For the first slowFor it uploads at slowUpload
// instead (an upload slot shared, then freed). A period of 0 is a peer
// that serves as asked, one block every 1/upload. It returns the rate
// received over the last quarter of d, the most requests out at once and
// the depth at the end. The clock is the model's own.
func simulateBatcher(rtt, phase, period time.Duration, upload float64, reqq int, d time.Duration, slowFor time.Duration, slowUpload float64) (rate float64, peak, depth int) {
	start := time.Unix(1e9, 0)
	p := newPipeline(start)
	type req struct {
		key   blockKey
		sent  time.Time
		reach time.Time // the peer
	}
	var queued []req // at the peer, or on the way to it
	type block struct {
		req
		arrive time.Time
	}
	var coming []block // sent by the peer, in arrival order
	next := 0
	send := func(now time.Time) {
		for len(queued)+len(coming) < min(max(p.depth, minPipeline), reqq, maxPipeline) {
			key := blockKey{next / 64, int64(next%64) * wire.BlockSize}
			next++
			p.sent(key, now, len(queued)+len(coming) == 0)
			queued = append(queued, req{key, now, now.Add(rtt / 2)})
		}
		peak = max(peak, len(queued)+len(coming))
	}
	send(start)
	tick := start.Add(phase)
	end := start.Add(d)
	var bytes int64
	for {
		if len(coming) > 0 && coming[0].arrive.Before(tick) {
			b := coming[0]
			coming = coming[1:]
			if b.arrive.After(end) {
				break
			}
			if b.arrive.After(end.Add(-d / 4)) {
				bytes += wire.BlockSize
			}
			p.received(b.key, wire.BlockSize, b.arrive.Sub(b.sent), b.arrive)
			send(b.arrive)
			continue
		}
		if tick.After(end) {
			break
		}
		p.update(tick, len(queued)+len(coming) > 0)
		up := upload
		if tick.Sub(start) < slowFor {
			up = slowUpload
		}
		service := time.Duration(float64(time.Second) * wire.BlockSize / up)
		period := period
		if period == 0 {
			period = service
		}
		budget := int(float64(period) / float64(service))
		n := 0
		for n < len(queued) && n < budget && !queued[n].reach.After(tick) {
			coming = append(coming, block{queued[n], tick.Add(time.Duration(n+1)*service + rtt/2)})
			n++
		}
		queued = queued[n:]
		tick = tick.Add(period)
	}
	return float64(bytes) / (d / 4).Seconds(), peak, min(max(p.depth, minPipeline), reqq, maxPipeline)
}

// A peer that serves in batches every 500 ms (Transmission) answers some
// requests at once and others a batch later, so the least wait says
// little of how deep the pipeline must be to keep it busy: the pipeline
// must grow while the rate grows with it, up to what the peer serves,
// and not stop at the four blocks a batch that the least wait gives.
func TestPipelineBatchingPeer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rtt    time.Duration
		phase  time.Duration
		upload float64
		reqq   int
	}{
		{"10ms", 10 * time.Millisecond, 5 * time.Millisecond, 8 << 20, 512},
		{"10ms late batch", 10 * time.Millisecond, 400 * time.Millisecond, 8 << 20, 512},
		{"50ms", 50 * time.Millisecond, 30 * time.Millisecond, 8 << 20, 512},
		{"50ms reqq 250", 50 * time.Millisecond, 200 * time.Millisecond, 8 << 20, 250},
		{"20ms mid batch", 20 * time.Millisecond, 250 * time.Millisecond, 8 << 20, 512},
		{"20ms 1 MiB/s", 20 * time.Millisecond, 5 * time.Millisecond, 1 << 20, 512},
		{"20ms 3 MiB/s", 20 * time.Millisecond, 5 * time.Millisecond, 3 << 20, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rate, peak, depth := simulateBatcher(tc.rtt, tc.phase, 500*time.Millisecond, tc.upload, tc.reqq, 30*time.Second, 0, 0)
			t.Logf("%.0f KiB/s of %.0f KiB/s, depth %d, %d requests out at most", rate/1024, tc.upload/1024, depth, peak)
			if rate < 0.75*tc.upload {
				t.Fatalf("%.0f KiB/s, want at least 75%% of the peer's %.0f KiB/s", rate/1024, tc.upload/1024)
			}
		})
	}
}

// A peer that serves as it is asked, the slow-start cases above run on
// past slow start: slow start does not resume and the pipeline stays as
// shallow as the delay exit left it.
func TestPipelineSteadyNoResume(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rtt      time.Duration
		rate     float64
		maxDepth int // the steady depth
		maxAsked int
		slowFor  time.Duration
		slowRate float64
	}{
		{"near fast", time.Millisecond, 100 << 20, safePipeline + 1, safePipeline + 2, 0, 0},
		{"LAN", 10 * time.Millisecond, 50 << 20, safePipeline + 8, 3 * safePipeline, 0, 0},
		{"far", 40 * time.Millisecond, 40 << 20, 230, 450, 0, 0},
		// The rate of a near peer can grow by slowStartResume for
		// reasons of its own (it served others, then only us), but it
		// does not sit on our requests for batchGap, so slow start does
		// not resume.
		{"near, slot freed", time.Millisecond, 100 << 20, safePipeline + 1, safePipeline + 2, 3 * time.Second, 1 << 20},
		{"near, slow link freed", time.Millisecond, 100 << 20, safePipeline + 1, safePipeline + 2, 3 * time.Second, 20 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rate, peak, depth := simulateBatcher(tc.rtt, 0, 0, tc.rate, maxPipeline, 10*time.Second, tc.slowFor, tc.slowRate)
			t.Logf("%.0f KiB/s of %.0f KiB/s, depth %d, %d requests out at most", rate/1024, tc.rate/1024, depth, peak)
			if depth > tc.maxDepth || peak > tc.maxAsked {
				t.Fatalf("depth %d, %d requests out at most; want at most %d and %d", depth, peak, tc.maxDepth, tc.maxAsked)
			}
		})
	}
}
