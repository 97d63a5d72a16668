package dht

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"sync"
	"time"

	"node/krpc"
	"node/routing"
)

// MaxTraceEvents bounds a Trace: a lookup sends at most a few hundred
// queries, but one cut short late, or many traced through one context,
// must not grow a trace without end. Events past it are counted in
// Dropped.
const MaxTraceEvents = 4096

// TraceOutcome is how a traced query ended.
type TraceOutcome uint8

const (
	// TraceAnswered: a reply the lookup used.
	TraceAnswered TraceOutcome = iota
	// TraceTimedOut: no reply within the hard timeout.
	TraceTimedOut
	// TraceError: a KRPC error reply, or the query could not be sent.
	TraceError
	// TraceAbandoned: the lookup ended first (done, cut short or closed);
	// a slow query's reply that came then is dropped and counted here.
	TraceAbandoned
	// TraceDisowned: a reply under another ID than the node was named
	// with; the nodes it named were not followed.
	TraceDisowned
)

func (o TraceOutcome) String() string {
	switch o {
	case TraceAnswered:
		return "answered"
	case TraceTimedOut:
		return "timed out"
	case TraceError:
		return "error"
	case TraceAbandoned:
		return "abandoned"
	case TraceDisowned:
		return "disowned"
	}
	return "unknown"
}

// TraceEvent is one query a traced lookup sent.
type TraceEvent struct {
	Addr netip.AddrPort
	// From is the node whose answer named Addr; invalid for a node the
	// lookup started from (routing table, node cache, bootstrap).
	From netip.AddrPort
	// Dist is log2 of the XOR distance from the node's ID to the target
	// (0 to 160, nearer is smaller; 0 for the target itself), with the
	// bits after the leading one as its fraction. NaN when the ID is
	// unknown: a bootstrap address that never answered.
	Dist float64
	Sent time.Time
	// Slow is when the query gave its slot away: it outlived its soft
	// timeout, or answers named K closer live candidates (overtaken);
	// zero if it never did.
	Slow time.Time
	// Done is when its outcome was known.
	Done    time.Time
	Outcome TraceOutcome
	Peers   int // peers (values) in the answer
	Nodes   int // nodes (nodes and nodes6) in the answer
	IPv6    bool
	Method  string // krpc.MethodGetPeers or krpc.MethodFindNode
}

// Trace records the queries of the lookups run with a context from
// WithTrace, for drawing one. It is safe for concurrent use: a dual-stack
// node's two lookups record into the same Trace.
type Trace struct {
	mu      sync.Mutex
	start   time.Time
	target  routing.ID
	events  []TraceEvent
	dropped int
	max     int // MaxTraceEvents; tests lower it
}

// NewTrace returns an empty trace whose clock starts now.
func NewTrace() *Trace { return &Trace{start: time.Now(), max: MaxTraceEvents} }

// Start is when the trace was made: the origin of its time axis.
func (t *Trace) Start() time.Time { return t.start }

// Target is the last traced lookup's target.
func (t *Trace) Target() routing.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.target
}

// Events returns a copy of the events recorded, in the order the queries
// ended, and how many were dropped past MaxTraceEvents.
func (t *Trace) Events() ([]TraceEvent, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TraceEvent(nil), t.events...), t.dropped
}

func (t *Trace) add(e TraceEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.events) >= t.max {
		t.dropped++
		return
	}
	t.events = append(t.events, e)
}

func (t *Trace) setTarget(id routing.ID) {
	t.mu.Lock()
	t.target = id
	t.mu.Unlock()
}

type traceKey struct{}

// WithTrace returns a context under which every lookup (GetPeers,
// GetPeersFrom, Announce, AnnounceFrom, FindNode) records its queries
// in t. Lookups under a context without one record nothing.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

func traceFrom(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}

// LogDistance is log2 of the XOR distance between a and b, from the top
// 53 bits from the first that differs: 0 (equal or adjacent) to 160.
func LogDistance(a, b routing.ID) float64 {
	d := a.Distance(b)
	cpl := routing.CommonPrefixLen(a, b)
	if cpl >= 159 {
		return 0 // equal, or distance 1
	}
	// The 64 bits starting at the leading one.
	var top uint64
	for i := range 64 {
		bit := cpl + i
		if bit >= 160 {
			top <<= 1
			continue
		}
		top = top<<1 | uint64(d[bit/8]>>(7-bit%8)&1)
	}
	// 53 bits, which a float64 holds exactly.
	frac := math.Log2(float64(top>>11) / (1 << 52))
	return float64(159-cpl) + frac
}

// traceQuery records how the query to c ended.
// It runs after receive has taken in the answer, so that c's ID is the
// one the node gave.
func (l *lookup) traceQuery(c *candidate, r queryResult, out TraceOutcome, done time.Time) {
	e := TraceEvent{
		Addr: c.Addr, From: c.from, Dist: math.NaN(),
		Sent: c.sent, Slow: c.slowAt, Done: done,
		Outcome: out, IPv6: c.Addr.Addr().Is6() && !c.Addr.Addr().Is4In6(),
		Method: l.method,
	}
	if c.known {
		e.Dist = LogDistance(c.ID, l.target)
	}
	if r.err == nil && r.resp != nil && r.resp.R != nil {
		ret := r.resp.R
		e.Peers, e.Nodes = len(ret.Values), len(ret.Nodes)+len(ret.Nodes6)
		if !c.known {
			e.Dist = LogDistance(ret.ID, l.target)
		}
	}
	l.trace.add(e)
}

// traceOutcome classifies a query's error for a trace.
func traceOutcome(err error) TraceOutcome {
	switch {
	case err == nil:
		return TraceAnswered
	case errors.Is(err, krpc.ErrTimeout):
		return TraceTimedOut
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return TraceAbandoned
	}
	return TraceError
}
