package dht

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"node/krpc"
	"node/routing"
)

// ErrClosed is returned by calls on a Node after Close.
var ErrClosed = errors.New("dht: node closed")

// maxPings bounds the verification and liveness pings in flight, so a flood
// of spoofed queries cannot turn us into a ping cannon.
const maxPings = 32

// pingRate and pingBurst bound how fast the loop starts pings
// (verification of queriers, liveness of questionable nodes, checks of
// offered nodes), whatever the table's churn or a flood of forged
// queriers that never answer (each freeing its maxPings slot when it
// times out) asks for: with the bucket refreshes, one lookup per bucket
// per routing.RefreshAfter, they are all a node sends unasked, and so
// bound its steady query rate. A ping not started now waits for the next
// tick or the next query from that node, as one beyond maxPings does.
const (
	pingRate  = 5 // per second
	pingBurst = 2 * maxPings
)

// pingReserve is how many of the maxPings places, and of the pingBurst
// pings the rate allows, the checks strangers ask for (of queriers, and
// of nodes offered by peers) leave to the pings the table itself asks
// for (its questionable nodes): queriers' source addresses can be forged,
// and a few forged queries a second into a bucket with room would
// otherwise take every ping there is, and the table's dead nodes would
// never be found out.
const pingReserve = maxPings / 2

// Node is a Mainline DHT node: it answers queries, keeps a routing table,
// stores announced peers, and runs lookups.
//
// One goroutine, the loop, owns the routing table, the token secrets and
// the ping bookkeeping; everything else reaches them through events. The
// peer store is a bounded LRU that guards itself.
type Node struct {
	cfg Config
	log *zap.Logger
	tr  *krpc.Transport
	// self is our ID as the loop sees it; selfShared publishes it to the
	// other goroutines, since BEP 42 may make the loop change it.
	self       routing.ID
	selfShared atomic.Pointer[routing.ID]
	is4        bool
	// v6only: the socket takes IPv6 alone, so our ID derives from the
	// IPv6 votes; otherwise from the IPv4 ones.
	v6only bool
	// A dual-stack node (BEP 32) is two Nodes, one per socket, each with
	// its own table, votes and ID, sharing the peer store: the first,
	// which callers hold, has v6, the IPv6 one; each has the other as sib,
	// to answer BEP 32's want from the other's view. The public lookup,
	// bootstrap and state calls of the first run on both (dual.go).
	v6        atomic.Pointer[Node]
	sib       atomic.Pointer[Node]
	secondary bool // the IPv6 one of a pair: the first saves the state
	// foreign counts contacts in answers that our socket cannot use or
	// did not ask for (another family's), dropped.
	foreign atomic.Uint64
	store   *peerStore
	// Serving (handle.go): the loop publishes view; srv belongs to the
	// socket's reader.
	view  atomic.Pointer[view]
	srv   *server
	cache *nodeCache   // nodes lookups heard of; see nodecache.go
	rtt   rttEstimator // of our queries, for lookups' soft timeouts

	events chan event
	ctx    context.Context
	cancel context.CancelFunc
	loopWG sync.WaitGroup // the loop
	bgWG   sync.WaitGroup // pings, refreshes, bootstraps the loop started
	closed atomic.Bool

	seedMu sync.Mutex
	seeds  []routing.Contact // saved nodes and bootstrap addresses (zero ID when unknown)
	// resolveMu is held while the bootstrap host names are resolved, so
	// that lookups starting meanwhile wait for the one resolution.
	resolveMu sync.Mutex
	resolved  bool // they were, at least once
	// routers says lookups may start from the bootstrap addresses; it is
	// false while a warm start trusts its saved nodes (BootstrapFallback).
	routers   atomic.Bool
	saved     *savedState // as loaded at start, for the IPv6 Node of a pair
	stateLock *os.File    // held while the node uses StateDir

	// Owned by the loop.
	table         *routing.Table
	tok           *tokens
	rng           *rand.Rand
	pinging       map[netip.AddrPort]bool
	pingLimit     *rate.Limiter
	refreshing    bool
	bootstrapping bool
	filling       bool
	nextBootstrap time.Time
	bootBackoff   time.Duration
	lastSave      time.Time
	// One tally per family: on a dual-stack socket the IPv4 and IPv6
	// voters see different addresses, and in one tally neither would
	// reach a majority.
	votes4, votes6 ipVotes
	offers         offers // see offer.go
	viewDirty      bool   // the table changed since view was published
}

// New starts a node. It binds its socket, loads saved state and starts
// answering queries at once; call Bootstrap to join the network.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	var lock *os.File
	if cfg.StateDir != "" {
		var err error
		if lock, err = lockState(cfg.StateDir); err != nil {
			cfg.Logger.Warn("not using the state directory: the routing table starts empty and will not be saved",
				zap.String("dir", cfg.StateDir), zap.Error(err))
			cfg.StateDir = ""
		}
	}
	n, err := newOneOrDual(cfg)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	n.stateLock = lock
	return n, nil
}

func newOneOrDual(cfg Config) (*Node, error) {
	if cfg.Conn6 == nil && cfg.Listen6 == "" {
		conn := cfg.Conn
		if conn == nil {
			var err error
			conn, err = net.ListenPacket("udp", cfg.Listen)
			if err != nil {
				return nil, fmt.Errorf("dht: listen %s: %w", cfg.Listen, err)
			}
		}
		return newNode(cfg, conn, nil)
	}
	return newDual(cfg)
}

// newNode starts the Node of one socket; first is the other Node of a
// dual-stack pair when this is its IPv6 one, whose state it shares.
func newNode(cfg Config, conn net.PacketConn, first *Node) (*Node, error) {
	now := cfg.Now()
	store := newPeerStore(cfg.MaxInfoHashes, cfg.MaxPeersPerInfoHash, cfg.PeerTTL)
	if first != nil {
		store = first.store
	}
	n := &Node{
		cfg:       cfg,
		log:       cfg.Logger,
		secondary: first != nil,
		store:     store,
		cache:     newNodeCache(cfg.NodeCacheSize, !cfg.InsecureIDs),
		events:    make(chan event, 256),
		tok:       newTokens(now),
		rng:       rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		pinging:   make(map[netip.AddrPort]bool),
		pingLimit: rate.NewLimiter(pingRate, pingBurst),
		srv:       newServer(cfg.MaxValues),
		// Refresh, pings and saving count from start, not from the epoch.
		lastSave: now,
		// An explicit Bootstrap call gets the first go.
		nextBootstrap: now.Add(5 * time.Second),
	}
	var saved *savedState
	warm := cfg.WarmState != nil
	switch {
	case first != nil:
		saved = first.saved
	case warm:
		var err error
		// Not kept as n.saved: the table holds the nodes, and a warm
		// state has no other family's to keep for a later run.
		if saved, err = decodeState(cfg.WarmState); err != nil {
			n.log.Warn("ignoring warm DHT state", zap.Error(err))
		}
	default:
		var err error
		if saved, err = loadState(cfg.StateDir); err != nil {
			n.log.Warn("ignoring saved DHT state", zap.Error(err))
		}
		n.saved = saved
	}
	// The IPv6 socket of a pair takes IPv6 alone however it was bound:
	// the other family is the other socket's.
	n.v6only = first != nil || ipv6Only(conn)
	switch {
	case !cfg.ID.IsZero():
		n.self = cfg.ID
	case n.v6only && saved != nil && !saved.ID6.IsZero():
		// The IPv6 socket's own ID, also when it runs alone.
		n.self = saved.ID6
	case first != nil:
		// BEP 32: the same ID in both tables, until BEP 42 gives each
		// family its own.
		n.self = first.self
	case saved != nil && !saved.ID.IsZero():
		n.self = saved.ID
	default:
		n.self = routing.RandomID(n.rng)
	}
	if saved != nil && !warm {
		n.seeds = append(n.seeds, saved.contacts()...)
	}
	// IP-literal bootstrap addresses need no resolving, so a lookup that
	// starts before Bootstrap has run can already use them.
	for _, hp := range cfg.Bootstrap {
		if ap, err := netip.ParseAddrPort(hp); err == nil && !containsAddr(n.seeds, ap) {
			n.seeds = append(n.seeds, routing.Contact{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())})
		}
	}
	n.table = routing.New(n.self, n.tableConfig())
	// A copy: the loop writes n.self when BEP 42 changes our ID, while
	// other goroutines read through selfShared.
	self := n.self
	n.selfShared.Store(&self)
	n.view.Store(&view{})

	// Before the transport starts: queries are answered from its reader.
	n.is4 = localAddr(conn).Addr().Unmap().Is4()
	savedNodes := 0
	for _, c := range n.seeds {
		if !c.ID.IsZero() && n.usable(c.Addr) {
			savedNodes++
		}
	}
	n.routers.Store(!cfg.BootstrapFallback || savedNodes < routing.K)
	if warm && saved != nil {
		for _, c := range saved.contacts() {
			if n.usable(c.Addr) && c.ID != n.self {
				// A full bucket's pings are dropped: the newcomer waits,
				// as it would had it answered a moment ago.
				_ = n.table.Responded(c, now)
			}
		}
		n.publishView(now)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	var handler krpc.Handler
	if !cfg.ReadOnly {
		handler = n.handleQuery
	}
	if first != nil {
		n.sib.Store(first)
	}
	var err error
	n.tr, err = krpc.New(krpc.Config{
		Conn:        conn,
		Handler:     handler,
		BorrowQuery: true, // handleQuery copies what it keeps
		Timeout:     cfg.QueryTimeout,
		ReadOnly:    cfg.ReadOnly,
		Version:     Version,

		RatePerIP:        cfg.RatePerIP,
		BurstPerIP:       cfg.BurstPerIP,
		BlockFor:         cfg.BlockFor,
		SendRate:         cfg.SendRate,
		SendLimiter:      cfg.sendLim,
		MaxAmplification: cfg.MaxAmplification,
		Logger:           cfg.Logger,
	})
	if err != nil {
		n.cancel()
		conn.Close()
		return nil, err
	}
	n.loopWG.Add(1)
	go n.loop()
	return n, nil
}

// localAddr is conn's address as the transport reports it.
func localAddr(conn net.PacketConn) netip.AddrPort {
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return ua.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	return ap
}

// ID is our node ID.
func (n *Node) ID() routing.ID { return *n.selfShared.Load() }

// Addr is the local UDP address.
func (n *Node) Addr() netip.AddrPort { return n.tr.LocalAddr() }

// stop stops every goroutine the Node of one socket started and closes
// its socket.
func (n *Node) stop() error {
	n.cancel()
	n.loopWG.Wait()
	err := n.tr.Close()
	n.bgWG.Wait()
	return err
}

// Stats is a snapshot of the node's state.
type Stats struct {
	ID   routing.ID
	Addr netip.AddrPort
	// V6Only says the socket carries IPv6 alone: the figures are the
	// IPv6 DHT's. A socket bound to IPv4, or a lone dual-stack one on
	// [::], carries IPv4.
	V6Only bool
	// External is our address as the DHT's votes have it (BEP 42), if
	// they have settled on one: the IPv4 address unless the socket is
	// IPv6 only.
	External netip.Addr
	// Voters is how many voters (one per /24 or /64) the tally that
	// External comes from holds.
	Voters               int
	Nodes, Good, Buckets int
	InfoHashes, Peers    int
	Transport            krpc.Stats
	// ForeignNodes counts the contacts in answers that were dropped as of
	// a family the socket does not carry or did not ask for (BEP 32).
	ForeignNodes uint64
	// V6 is the IPv6 socket's own figures when the node runs one beside
	// an IPv4 socket (BEP 32); the fields above are then the IPv4
	// socket's, the peer store's counts aside, which both share. Nil for
	// a node of one socket.
	V6 *Stats
}

// stats is the snapshot of one socket's Node.
func (n *Node) stats(ctx context.Context) (Stats, error) {
	s, err := ask(ctx, n, func(c chan Stats) event { return statsEvent{reply: c} })
	if err != nil {
		return s, err
	}
	s.InfoHashes, s.Peers = n.store.counts()
	s.Transport = n.tr.Stats()
	s.ForeignNodes = n.foreign.Load()
	s.V6Only = n.v6only
	return s, nil
}

// entries returns one socket's routing table's entries.
func (n *Node) entries(ctx context.Context) ([]routing.Entry, error) {
	return ask(ctx, n, func(c chan []routing.Entry) event { return entriesEvent{reply: c} })
}

// Events the loop handles. Each is a small struct; replies travel on a
// buffered channel the sender owns.
type event interface{ isEvent() }

type (
	queriedEvent   struct{ c routing.Contact } // a node (not read-only) queried us
	respondedEvent struct{ c routing.Contact } // a node answered one of our queries
	failedEvent    struct{ addr netip.AddrPort }
	pingDoneEvent  struct {
		addr netip.AddrPort
		id   routing.ID
		err  error
	}
	closestEvent struct {
		target routing.ID
		k      int
		reply  chan []routing.Contact
	}
	statsEvent   struct{ reply chan Stats }
	sparseEvent  struct{ reply chan []routing.ID }
	entriesEvent struct{ reply chan []routing.Entry }
	bgDoneEvent  struct {
		refresh, bootstrap, fill bool
		err                      error
	}
	fillEvent struct{} // Bootstrap asks for a fill of the node cache
)

func (queriedEvent) isEvent()   {}
func (respondedEvent) isEvent() {}
func (failedEvent) isEvent()    {}
func (pingDoneEvent) isEvent()  {}
func (closestEvent) isEvent()   {}
func (statsEvent) isEvent()     {}
func (sparseEvent) isEvent()    {}
func (entriesEvent) isEvent()   {}
func (bgDoneEvent) isEvent()    {}
func (fillEvent) isEvent()      {}

// post delivers ev to the loop, or fails when ctx or the node is done.
func (n *Node) post(ctx context.Context, ev event) error {
	select {
	case n.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.ctx.Done():
		return ErrClosed
	}
}

// ask posts the event mk builds around a reply channel and waits for the
// loop's answer.
func ask[T any](ctx context.Context, n *Node, mk func(chan T) event) (T, error) {
	var zero T
	ch := make(chan T, 1)
	if err := n.post(ctx, mk(ch)); err != nil {
		return zero, err
	}
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-n.ctx.Done():
		return zero, ErrClosed
	}
}

func (n *Node) loop() {
	defer n.loopWG.Done()
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case ev := <-n.events:
			n.handle(ev, n.cfg.Now())
		case <-t.C:
			r := n.tick(n.cfg.Now())
			if n.cfg.afterTick != nil {
				n.cfg.afterTick(r)
			}
		case <-n.ctx.Done():
			return
		}
		// A burst of events publishes one view, once it is over.
		if n.viewDirty && len(n.events) == 0 {
			n.publishView(n.cfg.Now())
		}
	}
}

func (n *Node) handle(ev event, now time.Time) {
	switch ev := ev.(type) {
	case queriedEvent:
		// A querier enters the node cache only once it answers our check
		// (see check): its source address may be forged, and one that
		// entered unasked would put made-up nodes, under IDs BEP 42
		// makes valid for the forged addresses, where our lookups start.
		if ev.c.ID != n.self && n.table.Queried(ev.c, now) {
			n.verify(ev.c.Addr)
		}
	case respondedEvent:
		n.responded(ev.c, now)
	case failedEvent:
		n.failed(ev.addr, now)
	case pingDoneEvent:
		delete(n.pinging, ev.addr)
		delete(n.offers.inflight, ev.addr)
		n.pingOffers()
		switch {
		case ev.err == nil:
			n.responded(routing.Contact{ID: ev.id, Addr: ev.addr}, now)
		case errors.Is(ev.err, krpc.ErrTimeout):
			n.failed(ev.addr, now)
		}
	case closestEvent:
		n.flushView(now)
		ev.reply <- n.table.Closest(ev.target, ev.k, now)
	case sparseEvent:
		ev.reply <- n.table.Sparse(n.rng)
	case statsEvent:
		s := Stats{ID: n.self, Addr: n.Addr(), External: n.idVotes().external, Voters: len(n.idVotes().byVoter), Nodes: n.table.Len(), Buckets: n.table.NumBuckets()}
		for _, e := range n.table.Entries() {
			if e.State(now, 0) == routing.Good {
				s.Good++
			}
		}
		ev.reply <- s
	case entriesEvent:
		n.flushView(now)
		ev.reply <- n.table.Entries()
	case ipVoteEvent:
		n.vote(ev, now)
	case bgDoneEvent:
		if ev.refresh {
			n.refreshing = false
		}
		if ev.bootstrap {
			n.bootstrapping = false
		}
		if ev.fill {
			n.filling = false
		}
	case offerEvent:
		n.offered(ev.addr, now)
	case fillEvent:
		if !n.filling {
			n.filling = true
			n.background(func(ctx context.Context) bgDoneEvent {
				n.fillCache(ctx)
				return bgDoneEvent{fill: true}
			})
		}
	}
}

func (n *Node) responded(c routing.Contact, now time.Time) {
	if !n.usable(c.Addr) || c.ID == n.self {
		return
	}
	old, had := n.table.Get(c.ID)
	size := n.table.Len()
	for _, p := range n.table.Responded(c, now) {
		n.ping(p.Addr)
	}
	if had && old.Addr == c.Addr && old.State(now, 0) != routing.Bad {
		return // only its times changed, which the view does not hold
	}
	if _, has := n.table.Get(c.ID); has || n.table.Len() != size {
		n.viewDirty = true
	}
}

// failed reports a failed query to the node at addr to the table.
func (n *Node) failed(addr netip.AddrPort, now time.Time) {
	n.table.Failed(addr, now)
	// Only a member can go bad or give its place to a replacement, and
	// members are in the view unless already bad.
	if !n.viewDirty && slices.ContainsFunc(n.view.Load().nodes, func(c routing.Contact) bool { return c.Addr == addr }) {
		n.viewDirty = true
	}
}

// publishView publishes the table's usable contacts for the reader that
// answers queries.
func (n *Node) publishView(now time.Time) {
	n.view.Store(newView(n.table.Entries(), now))
	n.viewDirty = false
}

// flushView publishes a pending view at once, so that what a caller of
// Entries or a lookup sees is what queries are answered from.
func (n *Node) flushView(now time.Time) {
	if n.viewDirty {
		n.publishView(now)
	}
}

// usable reports whether we can and should send to addr from our socket.
func (n *Node) usable(addr netip.AddrPort) bool {
	a := addr.Addr()
	return addr.IsValid() && addr.Port() != 0 && !a.IsUnspecified() && !a.IsMulticast() &&
		n.serves(familyOf(a))
}

// ping checks a node in the background; the answer comes back to the loop
// as a pingDoneEvent. At most maxPings run at once: beyond that the node
// simply waits for a later chance.
func (n *Node) ping(addr netip.AddrPort) { n.check(addr, false) }

// verify is ping for a node that queried us and may join the table.
// While the node cache holds less than a quarter of its capacity, the
// check is a find_node for a random target instead of a ping: its answer
// shows the node alive and under its ID just the same, and brings K nodes
// for the cache from wherever in the key space the node's table reaches,
// for no query more. A joining node verifies dozens of queriers, and
// this, not a burst of queries of its own, is what fills most of its
// cache (see fillCache).
func (n *Node) verify(addr netip.AddrPort) { n.check(addr, true) }

// strangerRoom reports whether a ping that strangers asked for (a
// querier's check, an offered node's) may start now: one that leaves
// pingReserve places and pings for the table's own.
func (n *Node) strangerRoom(now time.Time) bool {
	return len(n.pinging) < maxPings-pingReserve && n.pingLimit.TokensAt(now) >= pingReserve+1
}

func (n *Node) check(addr netip.AddrPort, mayFill bool) {
	now := n.cfg.Now()
	if mayFill && !n.strangerRoom(now) {
		return
	}
	if n.pinging[addr] || len(n.pinging) >= maxPings || n.ctx.Err() != nil || !n.pingLimit.AllowN(now, 1) {
		return
	}
	n.pinging[addr] = true
	method, args := krpc.MethodPing, &krpc.Args{ID: n.ID()}
	fill := mayFill && n.cache.enabled() && n.cache.len() < n.cfg.NodeCacheSize/4
	if fill {
		// info_hash as well as target: see lookup.send.
		t := routing.RandomID(n.rng)
		method, args = krpc.MethodFindNode, &krpc.Args{ID: n.ID(), Target: &t, InfoHash: &t}
	}
	n.bgWG.Add(1)
	go func() {
		defer n.bgWG.Done()
		r, err := n.tr.Query(n.ctx, addr, method, args)
		ev := pingDoneEvent{addr: addr, err: err}
		if err == nil {
			ev.id = r.R.ID
			n.noteIP(addr, r)
			c := routing.Contact{ID: r.R.ID, Addr: addr}
			if mayFill && !fill && n.usable(addr) && c.ID != n.ID() && addr != n.Addr() {
				// A querier is a node the node cache can start lookups
				// from; the queries of a network's lookups come from all
				// over the key space, so this fills the cache where our
				// own traffic does not reach. Only into room to spare,
				// though: it came to us unasked.
				n.cache.addIfRoom(c)
			}
			if fill {
				n.remember(c)
				for _, c := range answerNodes(r.R.Nodes) {
					n.learn(c, false)
				}
				for _, c := range answerNodes(r.R.Nodes6) {
					n.learn(c, false)
				}
			}
		}
		_ = n.post(n.ctx, ev)
	}()
}

// tick runs periodic maintenance: BEP 5 token rotation, bucket refresh,
// liveness pings of questionable nodes, re-bootstrap of an empty table,
// saving the table, and adopting an external address whose majority has
// lasted.
func (n *Node) tick(now time.Time) tickReport {
	r := tickReport{now: now}
	n.tok.rotate(now)
	n.checkVotes(now)
	if !n.refreshing {
		if targets := n.table.Refresh(now, n.rng); len(targets) > 0 {
			r.refresh = len(targets)
			n.refreshing = true
			n.background(func(ctx context.Context) bgDoneEvent {
				for _, t := range targets {
					if _, _, err := n.findNode(ctx, t); ctx.Err() != nil {
						return bgDoneEvent{refresh: true, err: err}
					}
				}
				return bgDoneEvent{refresh: true}
			})
		}
	}
	for _, c := range n.table.Questionable(now) {
		r.questionable++
		n.ping(c.Addr)
	}
	if n.table.Len() == 0 && !n.bootstrapping && len(n.cfg.Bootstrap)+len(n.seedsCopy()) > 0 && !now.Before(n.nextBootstrap) {
		// A node that lost every contact keeps trying, backing off, rather
		// than going silent.
		n.bootBackoff = min(max(2*n.bootBackoff, 5*time.Second), 5*time.Minute)
		n.nextBootstrap = now.Add(n.bootBackoff)
		n.bootstrapping = true
		n.background(func(ctx context.Context) bgDoneEvent {
			_, err := n.bootstrap(ctx)
			return bgDoneEvent{bootstrap: true, err: err}
		})
	}
	if n.cfg.StateDir != "" && !n.secondary && now.Sub(n.lastSave) >= saveInterval {
		n.lastSave = now
		if err := saveState(n.cfg.StateDir, n.stateOf(n.table.Entries(), now)); err != nil {
			n.log.Warn("saving DHT state", zap.Error(err))
		}
	}
	r.busy = n.refreshing || n.bootstrapping || n.filling || len(n.pinging) > 0
	return r
}

// tickReport is what one tick saw and started (see Config.afterTick).
type tickReport struct {
	now          time.Time
	questionable int  // nodes it set out to ping
	refresh      int  // buckets whose refresh lookups it started
	busy         bool // pings, refreshes, a bootstrap or a cache fill still running
}

// background runs f on its own goroutine and posts its result to the loop.
func (n *Node) background(f func(ctx context.Context) bgDoneEvent) {
	n.bgWG.Add(1)
	go func() {
		defer n.bgWG.Done()
		_ = n.post(n.ctx, f(n.ctx))
	}()
}

func (n *Node) closest(ctx context.Context, target routing.ID, k int) ([]routing.Contact, error) {
	return ask(ctx, n, func(c chan []routing.Contact) event {
		return closestEvent{target: target, k: k, reply: c}
	})
}

func (n *Node) sparseTargets(ctx context.Context) ([]routing.ID, error) {
	return ask(ctx, n, func(c chan []routing.ID) event { return sparseEvent{reply: c} })
}

func (n *Node) seedsCopy() []routing.Contact {
	n.seedMu.Lock()
	defer n.seedMu.Unlock()
	return append([]routing.Contact(nil), n.seeds...)
}

// pingNow is Ping on one socket.
func (n *Node) pingNow(ctx context.Context, addr netip.AddrPort) (routing.ID, error) {
	// The table holds plain IPv4 addresses, as OfferNode gives them.
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	r, err := n.tr.Query(ctx, addr, krpc.MethodPing, &krpc.Args{ID: n.ID()})
	if err != nil {
		return routing.ID{}, err
	}
	_ = n.post(ctx, respondedEvent{c: routing.Contact{ID: r.R.ID, Addr: addr}})
	return r.R.ID, nil
}
