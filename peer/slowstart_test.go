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
