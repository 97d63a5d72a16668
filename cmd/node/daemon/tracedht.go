package daemon

import (
	"context"
	"encoding/hex"
	"math"
	"slices"
	"sync"
	"time"

	"node/cmd/node/api"
	"node/dht"
	"node/krpc"
	"node/peer"
	"node/routing"
)

// Bounds on the lookups kept for the DHT status.
const (
	// MaxLookups is how many of the latest lookups are kept.
	MaxLookups = 8
	// MaxLookupAnswers bounds the answers kept of one lookup (the first
	// sent): a trace holds up to dht.MaxTraceEvents.
	MaxLookupAnswers = 256
)

// tracedDHT is the DHT the torrents use: the shared node, each of whose
// lookups for a torrent is traced and kept among the latest MaxLookups.
type tracedDHT struct {
	peer.DHT
	mu      sync.Mutex
	lookups []api.Lookup // newest last
}

func (d *tracedDHT) GetPeersFrom(ctx context.Context, ih routing.ID, peers chan<- dht.FoundPeer) (dht.LookupStats, error) {
	tr := dht.NewTrace()
	st, err := d.DHT.GetPeersFrom(dht.WithTrace(ctx, tr), ih, peers)
	d.keep(tr, ih, krpc.MethodGetPeers, st)
	return st, err
}

func (d *tracedDHT) AnnounceFrom(ctx context.Context, ih routing.ID, port int, peers chan<- dht.FoundPeer) (dht.AnnounceStats, error) {
	tr := dht.NewTrace()
	st, err := d.DHT.AnnounceFrom(dht.WithTrace(ctx, tr), ih, port, peers)
	d.keep(tr, ih, krpc.MethodGetPeers, st.Lookup)
	return st, err
}

func (d *tracedDHT) keep(tr *dht.Trace, target routing.ID, method string, st dht.LookupStats) {
	evs, _ := tr.Events()
	d.keepEvents(tr.Start(), evs, target, method, st)
}

func (d *tracedDHT) keepEvents(start time.Time, evs []dht.TraceEvent, target routing.ID, method string, st dht.LookupStats) {
	slices.SortFunc(evs, func(a, b dht.TraceEvent) int { return a.Sent.Compare(b.Sent) })
	if len(evs) > MaxLookupAnswers {
		evs = evs[:MaxLookupAnswers]
	}
	ms := func(d float64) float64 { return math.Round(d*1000) / 1000 }
	l := api.Lookup{
		Target: hex.EncodeToString(target[:]), Method: method, Start: start,
		DurationMS: ms(float64(st.Duration.Microseconds()) / 1000), Peers: st.Peers,
		Answers: make([]api.LookupAnswer, 0, len(evs)),
	}
	for _, e := range evs {
		a := api.LookupAnswer{
			Addr:   e.Addr.String(),
			SentMS: ms(float64(e.Sent.Sub(start).Microseconds()) / 1000),
			DoneMS: ms(float64(e.Done.Sub(start).Microseconds()) / 1000),
			OK:     e.Outcome == dht.TraceAnswered,
		}
		if !math.IsNaN(e.Dist) {
			v := e.Dist
			a.Dist = &v
		}
		a.SentMS, a.DoneMS = max(a.SentMS, 0), max(a.DoneMS, 0)
		l.Answers = append(l.Answers, a)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.lookups) >= MaxLookups {
		d.lookups = slices.Delete(d.lookups, 0, len(d.lookups)-MaxLookups+1)
	}
	d.lookups = append(d.lookups, l)
}

// latest is the kept lookups, newest first.
func (d *tracedDHT) latest() []api.Lookup {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := slices.Clone(d.lookups)
	slices.Reverse(out)
	return out
}
