package simdht

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"node/routing"
)

// Workload is what Measure runs: InfoHashes info-hashes, each announced
// by Announcers members, then Lookups lookups, each from a random
// answering member that announced nothing, Concurrency at a time, each
// bounded by Timeout.
type Workload struct {
	InfoHashes  int
	Announcers  int
	Lookups     int
	Concurrency int
	Timeout     time.Duration
	Seed        uint64
}

// Lookup is one lookup's record.
type Lookup struct {
	Found     int           // announced peers found
	First     time.Duration // to the first announced peer; 0 if none
	All       time.Duration // to the last of them; 0 unless all were found
	Queries   uint32        // queries the looker sent meanwhile
	Duration  time.Duration
	Err       error
	InfoHash  routing.ID
	FromIndex int
}

// Result is a Measure run's records.
type Result struct {
	Lookups       []Lookup
	AnnounceFails int
	// Window is the span over which QueriesIn counted, and QueriesIn the
	// queries each answering member was delivered in it (announces and
	// lookups, and everything in the background).
	Window    time.Duration
	QueriesIn []uint32
	// QueriesOut is the queries each answering member that neither
	// announced nor looked up sent in Window: its steady background
	// traffic (verification and liveness pings, bucket refreshes, node
	// cache fills), what it costs the network just by being there.
	QueriesOut []uint32
}

// Measure announces and looks up. Announcers and lookers are pinned:
// churn does not take them away.
func Measure(ctx context.Context, w *Network, wl Workload) Result {
	r := rand.New(rand.NewPCG(wl.Seed, wl.Seed^7))
	pool := w.Responsive()
	r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	need := wl.InfoHashes * wl.Announcers
	announcers, lookers := pool[:min(need, len(pool))], pool[min(need, len(pool)):]
	lookers = lookers[:min(len(lookers), wl.Lookups)]
	for _, i := range announcers {
		w.Pin(i)
	}
	for _, i := range lookers {
		w.Pin(i)
	}
	members := w.Members()
	busy := make(map[*Member]bool)
	for _, i := range append(slices.Clone(announcers), lookers...) {
		busy[members[i]] = true
	}
	before, beforeOut := snapshot(w), w.QueriesOut()
	start := time.Now()

	ihs := make([]routing.ID, wl.InfoHashes)
	want := make([]map[netip.AddrPort]bool, wl.InfoHashes)
	var res Result
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, wl.Concurrency)
	for h := range ihs {
		ihs[h] = routing.RandomID(r)
		want[h] = make(map[netip.AddrPort]bool)
		for j := range wl.Announcers {
			k := h*wl.Announcers + j
			if k >= len(announcers) {
				break
			}
			m := members[announcers[k]]
			port := 7000 + j
			want[h][netip.AddrPortFrom(m.Addr().Addr(), uint16(port))] = true
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				actx, cancel := context.WithTimeout(ctx, wl.Timeout)
				defer cancel()
				if err := w.Announce(actx, m, ihs[h], port); err != nil && actx.Err() == nil {
					mu.Lock()
					res.AnnounceFails++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(lookers) == 0 {
		return res
	}
	res.Lookups = make([]Lookup, wl.Lookups)
	for k := range res.Lookups {
		h := r.IntN(len(ihs))
		from := lookers[r.IntN(len(lookers))]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m := members[from]
			lctx, cancel := context.WithTimeout(ctx, wl.Timeout)
			defer cancel()
			_, out0 := m.Conn.Counted()
			var lmu sync.Mutex
			got := make(map[netip.AddrPort]bool)
			rec := Lookup{InfoHash: ihs[h], FromIndex: from}
			t0 := time.Now()
			err := w.Lookup(lctx, m, ihs[h], func(p netip.AddrPort) {
				lmu.Lock()
				defer lmu.Unlock()
				if !want[h][p] || got[p] {
					return
				}
				got[p] = true
				d := time.Since(t0)
				if len(got) == 1 {
					rec.First = d
				}
				if len(got) == len(want[h]) {
					rec.All = d
				}
			})
			rec.Duration = time.Since(t0)
			_, out1 := m.Conn.Counted()
			lmu.Lock()
			rec.Found = len(got)
			lmu.Unlock()
			rec.Queries = out1 - out0
			if err != nil && lctx.Err() == nil {
				rec.Err = err
			}
			res.Lookups[k] = rec
		}()
	}
	wg.Wait()
	res.Window = time.Since(start)
	after := snapshot(w)
	for m, n := range after {
		res.QueriesIn = append(res.QueriesIn, n-before[m])
	}
	slices.Sort(res.QueriesIn)
	for m, n := range w.QueriesOut() {
		// Members that came or left meanwhile were not there all along.
		if _, ok := beforeOut[m]; ok && !busy[m] && !m.Gone() {
			res.QueriesOut = append(res.QueriesOut, n-beforeOut[m])
		}
	}
	slices.Sort(res.QueriesOut)
	return res
}

func snapshot(w *Network) map[*Member]uint32 { return w.QueriesIn() }
