package dht

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"node/krpc"
	"node/routing"
)

// ErrNoResponse is returned by a lookup in which no node answered.
var ErrNoResponse = errors.New("dht: no node answered")

// burstAlpha multiplies Alpha while a lookup has had fewer than Alpha
// answers, and a get_peers lookup until its first peer. Early, each hop's
// wait is the round trip of the first of the closest candidates to
// answer, and 30% of the nodes a table or an answer names never do: more
// of them asked at once makes the fastest live one set the pace and
// keeps silent ones from holding every slot. Once peers are known the
// rest of the lookup (the K closest, for the tokens) runs at Alpha.
const burstAlpha = 2

// maxCandidates bounds a lookup's candidate list: only the K closest matter
// in the end, and farther ones beyond this many can never get back in.
const maxCandidates = 8 * routing.K

// maxLookupPerBlock is how many of a lookup's candidates may share a /24
// (a /64 for IPv6): nodes that agree with each other on the IDs they name
// (a ring of liars) take the K closest places by naming one another near
// the target, and one block of addresses, where BEP 42 leaves an owner
// 2,048 valid ID prefixes to pick from, then holds at most this many of
// them. Local and private ranges are exempt, as in the routing table.
const maxLookupPerBlock = 2

// maxAnswerNodes is how many nodes of each family one answer may give
// us (to the node cache, and to a lookup): BEP 5 answers name K, BEP 32
// ones K of each family, and a stranger's answer naming all that fit a
// datagram would otherwise put some 150 made-up nodes in the node cache
// at a time.
const maxAnswerNodes = 2 * routing.K

// answerNodes is ns, the nodes or nodes6 of an answer, cut to
// maxAnswerNodes.
func answerNodes(ns []krpc.NodeInfo) []krpc.NodeInfo { return ns[:min(len(ns), maxAnswerNodes)] }

// maxUnvouched is how many candidates a lookup asks, beside the K
// closest live vouched ones, of those it has no BEP 42 reason to believe
// (see vouch), once it knows K vouched: the nearest of them, nearer than
// the Kth vouched.
const maxUnvouched = routing.K / 2

// maxUnvouchedQueries bounds the queries a lookup sends to unvouched
// candidates once it knows K vouched ones.
const maxUnvouchedQueries = routing.K

// LookupStats describes one iterative lookup.
type LookupStats struct {
	Queries   int           // queries sent
	Responses int           // answers received
	Peers     int           // distinct peers found (get_peers)
	FirstPeer time.Duration // from start to the first peer; 0 if none
	Duration  time.Duration
	// Slow counts the queries that outlived their soft timeout or were
	// overtaken, so the lookup went on without waiting for them.
	Slow int
	// Disowned counts the answers given under another ID than the one
	// the node was named with: their nodes were not followed.
	Disowned int
	// Overtaken counts the queries that gave their slot away because
	// answers named K closer live candidates; they count in Slow too.
	Overtaken int
}

// LookupDone describes a lookup that has ended, for Config.OnLookup.
type LookupDone struct {
	Method string // krpc.MethodFindNode or krpc.MethodGetPeers
	// IPv6 says the lookup ran on a socket that carries IPv6 alone (see
	// Stats.V6Only).
	IPv6  bool
	Stats LookupStats
	// Err is how it ended: nil when nodes answered, ErrNoResponse when
	// none did, ctx's error when it was cut short, ErrClosed.
	Err error
}

type candState uint8

const (
	fresh candState = iota
	inFlight
	slow // in flight past its soft timeout, or overtaken: its slot went to another query
	answered
	failed
	// disowned: it answered under another ID than the one it was named
	// with. Someone lied, the namer or the node, and which is not known:
	// the node keeps the farther of the two positions, where it counts
	// toward the lookup's end like an answered one, but its answer's
	// nodes are not followed, nor is it a result or announced to.
	disowned
)

type candidate struct {
	routing.Contact
	known bool // ID known; bootstrap addresses start without one
	// vouched: its ID is one BEP 42 makes valid for its address, which a
	// liar cannot make up near a target it chooses, or it is exempt (see
	// vouches).
	vouched bool
	state   candState
	token   string    // get_peers: the write token it gave us
	sent    time.Time // when it was queried
	both    bool      // asked with BEP 32 want n4,n6 for our sibling's sake
	// For a trace: the node whose answer named it (invalid for a node the
	// lookup started from) and when it went slow.
	from   netip.AddrPort
	slowAt time.Time
}

type queryResult struct {
	c    *candidate
	resp *krpc.Msg
	err  error
}

// lookup is one iterative Kademlia lookup: alpha queries in flight, always
// to the closest candidates not yet asked, until the K closest live
// candidates have all answered. It starts from the nodes nearest the
// target in the routing table and in the node cache together. A query
// unanswered after the soft timeout gives its slot to the next candidate
// (and stops counting among the K closest) but may still answer until the
// lookup ends; so does one whose candidate answers have pushed out of the K
// closest. Until Alpha nodes have answered and, for get_peers, a peer is
// found, burstAlpha times Alpha queries may be in flight. Its state is owned by the goroutine running run; queries
// report back on results.
type lookup struct {
	n      *Node
	target routing.ID
	method string
	peers  chan<- netip.AddrPort // get_peers only; nil for find_node
	from   chan<- FoundPeer      // instead of peers, for GetPeersFrom
	cands  []*candidate          // sorted: unknown IDs first, then by distance
	seen   map[netip.AddrPort]bool
	found  map[netip.AddrPort]bool
	// nVouched counts the vouched candidates added that have not failed;
	// while K are, capped is set and maxUnvouched holds. Those dropped
	// from a full list still count: a liar that names nearer nodes would
	// otherwise keep the lookup from ever being capped.
	nVouched       int
	capped         bool
	unvouchedAsked int // queries to unvouched candidates once capped
	inflight       int // queries holding a slot
	slow           int // queries past their soft timeout, still unanswered
	results        chan queryResult
	qctx           context.Context // the queries': cancelled when the lookup ends
	cancel         context.CancelFunc
	timer          *time.Timer
	start          time.Time
	stats          LookupStats
	// savedOnly: the lookup began from saved nodes alone, leaving the
	// bootstrap addresses out (see Config.BootstrapFallback); should none
	// of them answer, it falls back to those.
	savedOnly bool
	trace     *Trace // nil unless the caller asked for one (WithTrace)
}

func (n *Node) newLookup(ctx context.Context, target routing.ID, method string, peers chan<- netip.AddrPort) (*lookup, error) {
	l := &lookup{
		n: n, target: target, method: method, peers: peers,
		seen:  make(map[netip.AddrPort]bool),
		found: make(map[netip.AddrPort]bool),
		// Senders may wait on a full buffer (slow queries are not bounded
		// by Alpha); run and drain receive until none is outstanding.
		results: make(chan queryResult, 2*burstAlpha*n.cfg.Alpha),
		// The wall clock, not cfg.Now, here and for each query's sent
		// time: they measure round trips and soft timeouts against real
		// timers, which a test clock that jumps or stands still would
		// turn into instant or endless waits.
		start: time.Now(),
		trace: traceFrom(ctx),
	}
	if l.trace != nil {
		l.trace.setTarget(target)
	}
	closest, err := n.closest(ctx, target, 2*routing.K)
	if err != nil {
		return nil, err
	}
	for _, c := range closest {
		l.add(c, true, netip.AddrPort{})
	}
	for _, c := range n.cache.closest(target, 2*routing.K) {
		l.add(c, true, netip.AddrPort{})
	}
	if len(closest) < routing.K {
		// A cold start: the lookup may begin before Bootstrap has
		// resolved the routers' names. A warm one trusts its saved
		// nodes (the entries with IDs) until Bootstrap finds them gone.
		routers := n.routers.Load()
		if routers {
			n.resolveBootstrap(ctx, false)
		}
		l.savedOnly = !routers
		for _, c := range n.seedsCopy() {
			if !c.ID.IsZero() || routers {
				l.add(c, !c.ID.IsZero(), netip.AddrPort{})
			}
		}
	}
	return l, nil
}

// add makes c a candidate; from is the node whose answer named it.
func (l *lookup) add(c routing.Contact, known bool, from netip.AddrPort) {
	if l.seen[c.Addr] || !l.n.usable(c.Addr) || (known && c.ID == l.n.ID()) || c.Addr == l.n.Addr() {
		return
	}
	nc := &candidate{Contact: c, known: known, from: from}
	if known {
		nc.vouched = l.vouches(c, from)
	}
	if !l.blockRoom(nc) {
		return // not seen: named again once its block has room, it may come in
	}
	l.seen[c.Addr] = true
	if nc.vouched {
		l.nVouched++
		l.capped = l.nVouched >= routing.K
	}
	i, _ := slices.BinarySearchFunc(l.cands, nc, l.cmp)
	l.cands = slices.Insert(l.cands, i, nc)
	if len(l.cands) > maxCandidates {
		l.trim()
	}
}

// trim drops one candidate not yet asked (asked ones are kept so their
// answers still find their slot): once capped, the farthest unvouched one
// past the maxUnvouched nearest, which could never be asked (see over);
// else the farthest. Otherwise a liar's answer naming dozens of unvouched
// nodes nearer the target would push out every vouched one not yet asked,
// and the lookup would end where the liar met it.
func (l *lookup) trim() {
	drop, unvouched := -1, 0
	for j, c := range l.cands {
		if c.state != fresh {
			continue
		}
		if l.capped && c.known && !c.vouched {
			if unvouched++; unvouched > maxUnvouched {
				drop = j
			}
		}
	}
	if drop < 0 {
		for j := len(l.cands) - 1; j >= 0; j-- {
			if l.cands[j].state == fresh {
				drop = j
				break
			}
		}
	}
	if drop >= 0 {
		l.cands = slices.Delete(l.cands, drop, drop+1)
	}
}

// blockRoom reports whether c (its vouched already set) may join the
// candidates beside the others from its /24 (/64): fewer than
// maxLookupPerBlock of them that have not failed, or one not yet asked
// farther from the target than c and not vouched unless c is, which c
// then replaces (and which may come back, named again, once there is
// room). The places go by distance and liveness, not by who was named
// first: a liar that names two addresses in an honest node's block
// before the lookup meets that node (under IDs far from the target, or
// near it at addresses where nobody answers) would otherwise shut it out.
func (l *lookup) blockRoom(c *candidate) bool {
	ip := c.Addr.Addr().Unmap()
	if routing.BEP42Exempt(ip) {
		return true
	}
	b := voterPrefix(ip)
	in, last := 0, -1
	for i, o := range l.cands {
		if o.state == failed || !b.Contains(o.Addr.Addr().Unmap()) {
			continue
		}
		in++
		if o.state == fresh && o.known && (c.vouched || !o.vouched) {
			last = i
		}
	}
	if in < maxLookupPerBlock {
		return true
	}
	if last < 0 || !c.known || l.cmp(l.cands[last], c) <= 0 {
		return false
	}
	o := l.cands[last]
	if o.vouched {
		l.nVouched--
	}
	delete(l.seen, o.Addr)
	l.cands = slices.Delete(l.cands, last, last+1)
	return true
}

// vouch sets c.vouched for its (now known) ID.
//
// A liar that names its accomplices under made-up IDs next to the target,
// and has them answer under those IDs, takes every place among the K
// closest, and no answer is inconsistent with another. What it cannot
// make up is an ID that BEP 42 makes valid for an address it owns and that
// also lies next to an arbitrary target: one address has 8 valid 21-bit
// prefixes. So once K such nodes are known, the K closest live places
// that end the lookup, and that an announce goes to, are the vouched
// ones', whatever the unvouched say; beside them the lookup still asks
// the maxUnvouched nearest unvouched, which on the live DHT are often
// honest nodes whose software ignores BEP 42 and hold peers announced to
// them.
// Until K are known (a cold start, or a DHT where few nodes comply)
// distance alone decides: preferred, never required. Nodes at exempt
// addresses cannot know the address their ID should match; they are
// vouched for when we started from them or an exempt node named them, not
// when a public node names a private address.
//
// Vouched nodes that fail stop counting: a liar can name nodes under
// valid IDs for addresses where nobody answers, and where few nodes comply
// K of those would otherwise hold the lookup to maxUnvouchedQueries among
// the honest, non-compliant rest.
func (l *lookup) vouch(c *candidate) {
	was := c.vouched
	c.vouched = l.vouches(c.Contact, c.from)
	switch {
	case c.vouched && !was:
		l.nVouched++
	case was && !c.vouched:
		l.nVouched--
	}
	l.capped = l.nVouched >= routing.K
}

// counts reports whether c takes one of the K closest live places.
func (l *lookup) counts(c *candidate) bool {
	return c.known && (!l.capped || c.vouched)
}

// over reports whether c is past maxUnvouched, counting in *n the
// unvouched candidates taken so far in a walk from the closest: such a
// candidate is not asked, however near it claims to be. Nor
// is one not yet asked once maxUnvouchedQueries were, as a ring's every
// answer names nearer accomplices for the unvouched places.
func (l *lookup) over(c *candidate, n *int) bool {
	if !l.capped || !c.known || c.vouched {
		return false
	}
	if *n >= maxUnvouched || (c.state == fresh && l.unvouchedAsked >= maxUnvouchedQueries) {
		return true
	}
	*n++
	return false
}

func (l *lookup) vouches(c routing.Contact, from netip.AddrPort) bool {
	if l.n.cfg.InsecureIDs {
		return true
	}
	ip := c.Addr.Addr().Unmap()
	if routing.BEP42Exempt(ip) {
		return !from.IsValid() || routing.BEP42Exempt(from.Addr())
	}
	return routing.IDMatchesIP(c.ID, ip)
}

// cmp orders candidates: unknown IDs first (they must be asked to learn
// anything), then by XOR distance to the target.
func (l *lookup) cmp(a, b *candidate) int {
	switch {
	case !a.known && !b.known:
		return 0
	case !a.known:
		return -1
	case !b.known:
		return 1
	}
	return a.ID.Distance(l.target).Cmp(b.ID.Distance(l.target))
}

// next returns the closest candidate not yet asked, if it is among the K
// closest that have neither failed nor gone slow; nil means nothing useful
// is left to ask. full reports whether K such candidates exist at all.
//
// Among those, an unvouched one (see vouch) is asked only when no vouched
// one is left to ask: a ring of liars names ever nearer accomplices at
// every answer, and would otherwise take every slot.
func (l *lookup) next() (c *candidate, full bool) {
	live, unvouched := 0, 0
	var later *candidate
	for _, c := range l.cands {
		if c.state == failed || c.state == slow || l.over(c, &unvouched) {
			continue
		}
		if l.counts(c) {
			live++
		}
		if c.state == fresh {
			if !l.capped || !c.known || c.vouched {
				return c, false
			}
			if later == nil {
				later = c
			}
		}
		if live >= routing.K {
			break
		}
	}
	if later != nil {
		return later, false
	}
	return nil, live >= routing.K
}

func (l *lookup) run(ctx context.Context) (err error) {
	l.qctx, l.cancel = context.WithCancel(ctx)
	defer l.cancel()
	if f := l.n.cfg.OnLookup; f != nil {
		defer func() { f(LookupDone{Method: l.method, IPv6: l.n.v6only, Stats: l.stats, Err: err}) }()
	}
	for {
		full := false
		l.overtake()
		for l.inflight < l.alpha() && ctx.Err() == nil {
			var c *candidate
			if c, full = l.next(); c == nil {
				break
			}
			l.send(c)
		}
		// Done when nothing holds a slot and the K closest live
		// candidates have answered; slow queries are waited for only
		// while there are not K of those.
		if l.inflight == 0 && (l.slow == 0 || full || ctx.Err() != nil) {
			if l.savedOnly && l.stats.Responses == 0 && ctx.Err() == nil {
				// None of the saved nodes answered: the state is too
				// old to rejoin through, and the routers are what is
				// left, for this lookup and every later one.
				l.savedOnly = false
				l.n.fallBack(ctx)
				for _, c := range l.n.seedsCopy() {
					l.add(c, !c.ID.IsZero(), netip.AddrPort{})
				}
				continue
			}
			break
		}
		var r queryResult
		if l.inflight == 0 {
			r = <-l.results // only slow queries left: each ends within its hard timeout
		} else if r = l.wait(); r.c == nil {
			continue // soft timeouts freed slots
		}
		if r.c.state == slow {
			l.slow--
		} else {
			l.inflight--
		}
		if err := l.receive(ctx, r); err != nil {
			l.drain()
			return err
		}
	}
	l.drain()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if l.stats.Responses == 0 {
		return ErrNoResponse
	}
	return nil
}

// alpha is how many queries may hold a slot now: burstAlpha times Alpha
// until the lookup has Alpha answers and, for get_peers, a peer.
func (l *lookup) alpha() int {
	a := l.n.cfg.Alpha
	if l.stats.Responses < a || (l.method == krpc.MethodGetPeers && l.stats.Peers == 0) {
		return burstAlpha * a
	}
	return a
}

// overtake gives away the slots of the queries in flight to candidates
// that answers have pushed out of the K closest live ones: such a query
// was the last hop's, and the lookup's path now runs through the closer
// nodes, which would otherwise wait for those answers, or for the soft
// timeout of a silent node, before they are asked. Like a slow query's,
// an overtaken one's answer is still taken if it comes before the lookup
// ends.
func (l *lookup) overtake() {
	live, unvouched := 0, 0
	now := time.Now()
	for _, c := range l.cands {
		if c.state == failed || c.state == slow {
			continue
		}
		out := l.over(c, &unvouched)
		if (out || live >= routing.K) && c.state == inFlight {
			c.state = slow
			c.slowAt = now
			l.inflight--
			l.slow++
			l.stats.Slow++
			l.stats.Overtaken++
		}
		if l.counts(c) && !out {
			live++
		}
	}
}

// wait returns the next result, or, once the oldest query holding a slot
// passes its soft timeout, marks every such query slow and returns a zero
// result.
func (l *lookup) wait() queryResult {
	soft := l.n.rtt.softTimeout(l.n.cfg.QueryTimeout)
	var oldest time.Time
	for _, c := range l.cands {
		if c.state == inFlight && (oldest.IsZero() || c.sent.Before(oldest)) {
			oldest = c.sent
		}
	}
	d := time.Until(oldest.Add(soft))
	if d <= 0 {
		l.markSlow(soft)
		return queryResult{}
	}
	if l.timer == nil {
		l.timer = time.NewTimer(d)
	} else {
		l.timer.Reset(d)
	}
	select {
	case r := <-l.results:
		l.timer.Stop()
		return r
	case <-l.timer.C:
		l.markSlow(soft)
		return queryResult{}
	}
}

func (l *lookup) markSlow(soft time.Duration) {
	now := time.Now() // the timer's clock: see newLookup
	for _, c := range l.cands {
		if c.state == inFlight && now.Sub(c.sent) >= soft {
			c.state = slow
			c.slowAt = now
			l.inflight--
			l.slow++
			l.stats.Slow++
		}
	}
}

// drain cancels and waits for the queries still outstanding, so none
// outlives the lookup; the answers of slow ones that come now are dropped.
func (l *lookup) drain() {
	l.cancel()
	if l.timer != nil {
		l.timer.Stop()
	}
	for range l.inflight + l.slow {
		r := <-l.results
		if l.trace != nil {
			l.traceQuery(r.c, r, TraceAbandoned, time.Now())
		}
	}
	l.inflight, l.slow = 0, 0
	l.stats.Duration = time.Since(l.start)
}

func (l *lookup) send(c *candidate) {
	if l.capped && c.known && !c.vouched {
		l.unvouchedAsked++
	}
	c.state = inFlight
	c.sent = time.Now() // a round trip's start: see newLookup
	l.inflight++
	l.stats.Queries++
	args := &krpc.Args{ID: l.n.ID()}
	if c.both = l.n.sibHungry(); c.both {
		args.Want = wantBoth
	}
	t := l.target
	args.InfoHash = &t
	if l.method == krpc.MethodFindNode {
		// The target goes in info_hash too: anacrolix/dht (v2.23.0, and
		// every client built on it) answers find_node with the nodes
		// closest to info_hash, ignoring target, so without it they return
		// nodes near the zero ID. BEP 5 nodes ignore the extra argument.
		args.Target = &t
	}
	go func() {
		resp, err := l.n.tr.Query(l.qctx, c.Addr, l.method, args)
		l.results <- queryResult{c: c, resp: resp, err: err}
	}()
}

func (l *lookup) receive(ctx context.Context, r queryResult) error {
	c := r.c
	if l.trace != nil {
		done := time.Now()
		defer func() {
			out := traceOutcome(r.err)
			if c.state == disowned {
				out = TraceDisowned
			}
			l.traceQuery(c, r, out, done)
		}()
	}
	if r.err != nil {
		c.state = failed
		if c.vouched {
			l.nVouched--
			l.capped = l.nVouched >= routing.K
		}
		if errors.Is(r.err, krpc.ErrTimeout) {
			l.n.cache.remove(c.Addr)
			_ = l.n.post(ctx, failedEvent{addr: c.Addr})
		}
		return nil
	}
	l.stats.Responses++
	l.n.rtt.observe(time.Since(c.sent))
	ret := r.resp.R
	if c.known && c.ID != ret.ID {
		return l.disown(ctx, c, ret)
	}
	c.state = answered
	if !c.known {
		c.ID, c.known = ret.ID, true
		l.vouch(c)
		slices.SortStableFunc(l.cands, l.cmp)
	}
	c.token = ret.Token
	if err := l.n.post(ctx, respondedEvent{c: c.Contact}); err != nil {
		return err
	}
	l.n.noteIP(c.Addr, r.resp)
	l.n.remember(c.Contact)
	for _, nc := range answerNodes(ret.Nodes) {
		if l.n.learn(nc, c.both) {
			l.add(nc, true, c.Addr)
		}
	}
	for _, nc := range answerNodes(ret.Nodes6) {
		if l.n.learn(nc, c.both) {
			l.add(nc, true, c.Addr)
		}
	}
	return l.values(ctx, c, ret)
}

// disown takes the answer of a node that gave another ID than the one
// it was named with. Someone lied, the namer or the node, and which is
// not known: a liar that makes up an ID near each target gets into the
// closest set by claiming to be nearer than it was named, and a namer
// that gives a stranger's address a false ID near the target sends the
// lookup after it; a stable node's ID changes only when it restarts, and
// what it stored goes with it. So neither claim is believed: the node
// ranks at the farther of the two IDs, and takes a place among the
// closest only where both put it; the nodes it names are not followed,
// for the liar of the two may be the one whose answer would steer the
// lookup; it enters neither the routing table nor the node cache. Its
// peers are passed on only when it claims to be farther than it was
// named: that is an honest node falsely named near the target, which
// still holds the peers announced to it, while one that claims to be
// nearer is the liar's own move.
func (l *lookup) disown(ctx context.Context, c *candidate, ret *krpc.Return) error {
	c.state = disowned
	l.stats.Disowned++
	if ret.ID.Distance(l.target).Cmp(c.ID.Distance(l.target)) < 0 {
		return nil
	}
	c.ID = ret.ID
	l.vouch(c)
	slices.SortStableFunc(l.cands, l.cmp)
	return l.values(ctx, c, ret)
}

// values passes on the peers of c's answer.
func (l *lookup) values(ctx context.Context, c *candidate, ret *krpc.Return) error {
	for _, p := range ret.Values {
		if l.found[p] || !p.IsValid() || p.Port() == 0 {
			continue
		}
		l.found[p] = true
		if l.stats.Peers == 0 {
			l.stats.FirstPeer = time.Since(l.start)
		}
		l.stats.Peers++
		if l.from != nil {
			select {
			case l.from <- FoundPeer{Addr: p, From: c.Addr}:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		if l.peers == nil {
			continue
		}
		select {
		case l.peers <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// wantBoth is BEP 32's want for nodes of both families.
var wantBoth = []string{"n4", "n6"}

// sibHungry reports whether our sibling, the other socket of a dual-stack
// node, knows so few nodes that our queries should ask for its family
// too (BEP 32 want): how a socket whose family has no bootstrap node of
// its own joins its DHT.
func (n *Node) sibHungry() bool {
	sib := n.sib.Load()
	return sib != nil && len(sib.view.Load().nodes) < routing.K
}

// learn takes in a contact from an answer: into our node cache if our
// socket can reach it (it reports so, for the lookup to add), into our
// sibling's if we asked for its family (both), else it is dropped and
// counted (Stats.ForeignNodes): a node that sends what was not asked for
// gets nothing for it.
func (n *Node) learn(c routing.Contact, both bool) bool {
	if n.usable(c.Addr) {
		n.remember(c)
		return true
	}
	if sib := n.sib.Load(); both && sib != nil && sib.usable(c.Addr) {
		sib.remember(c)
		return false
	}
	n.foreign.Add(1)
	return false
}

// remember puts c in the node cache unless it is us or unreachable from
// our socket.
func (n *Node) remember(c routing.Contact) {
	if n.usable(c.Addr) && c.ID != n.ID() && c.Addr != n.Addr() {
		n.cache.add(c)
	}
}

// closestAnswered returns up to k candidates that answered, nearest first:
// once K vouched ones are known, the vouched, and others only where too
// few of those answered.
func (l *lookup) closestAnswered(k int) []*candidate {
	var out []*candidate
	for _, c := range l.cands {
		if c.state == answered && l.counts(c) {
			out = append(out, c)
			if len(out) == k {
				return out
			}
		}
	}
	// Too few vouched ones answered: the nearest others fill in.
	for _, c := range l.cands {
		if c.state == answered && c.known && !l.counts(c) {
			out = append(out, c)
			if len(out) == k {
				break
			}
		}
	}
	slices.SortStableFunc(out, l.cmp)
	return out
}

// announceTo returns the nodes an announce goes to: the K closest that
// answered (see closestAnswered) and, once capped, the maxUnvouched
// unvouched ones nearest the target that answered and are nearer than
// the farthest of those. Where few nodes comply with BEP 42 the K closest
// vouched nodes lie beyond the K closest of all, which are where a
// client that does not rank by BEP 42 looks for peers; a liar among them
// gets no more than our address, which it could learn from any lookup.
func (l *lookup) announceTo() []*candidate {
	out := l.closestAnswered(routing.K)
	if !l.capped || len(out) == 0 {
		return out
	}
	last, extra := out[len(out)-1], 0
	for _, c := range l.cands {
		if extra == maxUnvouched || l.cmp(c, last) >= 0 {
			break
		}
		if c.state == answered && c.known && !c.vouched && !slices.Contains(out, c) {
			out = append(out, c)
			extra++
		}
	}
	return out
}

// FindNode runs an iterative find_node lookup and returns the K closest
// nodes to target that answered, nearest first.
func (n *Node) findNode(ctx context.Context, target routing.ID) ([]routing.Contact, LookupStats, error) {
	l, err := n.newLookup(ctx, target, krpc.MethodFindNode, nil)
	if err != nil {
		return nil, LookupStats{}, err
	}
	err = l.run(ctx)
	var out []routing.Contact
	for _, c := range l.closestAnswered(routing.K) {
		out = append(out, c.Contact)
	}
	return out, l.stats, err
}

// GetPeers runs an iterative get_peers lookup for infoHash, sending each
// distinct peer to peers as soon as it arrives (peers may be nil to only
// count them). It returns when the K closest nodes have answered or ctx is
// done; it does not close peers.
func (n *Node) getPeers(ctx context.Context, infoHash routing.ID, peers chan<- netip.AddrPort) (LookupStats, error) {
	l, err := n.newLookup(ctx, infoHash, krpc.MethodGetPeers, peers)
	if err != nil {
		return LookupStats{}, err
	}
	err = l.run(ctx)
	return l.stats, err
}

// FoundPeer is a peer a get_peers lookup found and the node whose answer
// held it: a value is only as good as its source, and a caller can judge
// what a stranger tells it (a public node naming a private address, one
// node naming thousands) only if it knows which stranger said it.
type FoundPeer struct {
	Addr, From netip.AddrPort
}

// GetPeersFrom is GetPeers, with the node that gave each peer. A peer
// given by several nodes is sent once, with the first.
func (n *Node) getPeersFrom(ctx context.Context, infoHash routing.ID, peers chan<- FoundPeer) (LookupStats, error) {
	l, err := n.newLookup(ctx, infoHash, krpc.MethodGetPeers, nil)
	if err != nil {
		return LookupStats{}, err
	}
	l.from = peers
	err = l.run(ctx)
	return l.stats, err
}
