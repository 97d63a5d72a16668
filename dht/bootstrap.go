package dht

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"node/krpc"
	"node/routing"
)

// PublicRouters are the well-known Mainline DHT entry points. Nothing in
// this package uses them on its own: the command line passes them as its
// default --bootstrap list.
var PublicRouters = []string{
	"router.bittorrent.com:6881",
	"router.utorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"dht.libtorrent.org:25401",
}

// Bootstrap joins the network: it resolves the configured bootstrap
// addresses and runs a find_node lookup for our own ID through them and
// through the nodes saved by the last run. It returns the number of nodes
// in the routing table afterwards, or an error if nobody answered.
func (n *Node) bootstrap(ctx context.Context) (int, error) {
	if n.routers.Load() {
		n.resolveBootstrap(ctx, true)
	}
	// With saved nodes alone, a lookup that none of them answers falls
	// back to the bootstrap addresses itself (see fallBack).
	near, st, err := n.findNode(ctx, n.ID())
	if err != nil {
		return 0, fmt.Errorf("dht: bootstrap: %w", err)
	}
	// The own-ID lookup fills the buckets near us; a far one that holds
	// nobody fills only from queries aimed into it. Without this a new
	// node's table can miss whole quarters of the key space for its first
	// 15 minutes.
	targets, err := n.sparseTargets(ctx)
	if err != nil {
		return 0, err
	}
	// A bucket at least as deep as the farthest of the K nodes the lookup
	// found is short of K only because the network holds no more there:
	// the lookup asked its way through all of them.
	if len(near) == routing.K {
		reached := routing.CommonPrefixLen(near[len(near)-1].ID, n.ID())
		targets = slices.DeleteFunc(targets, func(t routing.ID) bool { return routing.CommonPrefixLen(t, n.ID()) >= reached })
	}
	// The cache fill runs on its own, not awaited: its queries to nodes
	// that have gone away wait out the full query timeout, which a caller
	// of Bootstrap (node peers looks up right after it) should not.
	_ = n.post(ctx, fillEvent{})
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.refreshBucket(ctx, t)
		}()
	}
	wg.Wait()
	s, err := n.stats(ctx)
	if err != nil {
		return 0, err
	}
	n.log.Debug("bootstrapped", zap.Int("queries", st.Queries), zap.Int("nodes", s.Nodes))
	return s.Nodes, nil
}

// resolveBootstrap resolves the bootstrap host names and adds their
// addresses to the seeds. Bootstrap does it every time it runs (a router's
// address may change during a run of months); a lookup only until one
// resolution has finished, so that the first lookup of a cold start does
// not wait for Bootstrap's own-ID lookup to learn where the routers are.
func (n *Node) resolveBootstrap(ctx context.Context, again bool) {
	n.resolveMu.Lock()
	defer n.resolveMu.Unlock()
	if n.resolved && !again {
		return
	}
	var addrs []netip.AddrPort
	for _, hp := range n.cfg.Bootstrap {
		as, err := resolve(ctx, hp)
		if err != nil {
			n.log.Warn("bootstrap address", zap.String("addr", hp), zap.Error(err))
			continue
		}
		addrs = append(addrs, as...)
	}
	n.seedMu.Lock()
	for _, a := range addrs {
		if !containsAddr(n.seeds, a) {
			n.seeds = append(n.seeds, routing.Contact{Addr: a})
		}
	}
	n.seedMu.Unlock()
	n.resolved = n.resolved || ctx.Err() == nil
}

// fallBack turns the bootstrap addresses on for every lookup from now on:
// a lookup that began from the saved nodes alone found that none answers.
func (n *Node) fallBack(ctx context.Context) {
	if !n.routers.Swap(true) {
		n.log.Info("no saved node answered; joining through the bootstrap addresses")
	}
	n.resolveBootstrap(ctx, false)
}

func containsAddr(cs []routing.Contact, a netip.AddrPort) bool {
	for _, c := range cs {
		if c.Addr == a {
			return true
		}
	}
	return false
}

// resolve turns host:port into addresses; an IP literal needs no lookup.
func resolve(ctx context.Context, hostport string) ([]netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
	}
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("bad port in %q", hostport)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return out, nil
}

// refreshHops is how many find_node queries Bootstrap spends on each
// empty bucket short of the own-ID lookup's reach. A whole lookup for a
// random ID in the bucket's range costs a dozen queries or more; but the
// known node nearest that ID answers with the K nodes nearest it, all in
// the bucket when the network has that many there, and the nearest of
// those answers with K more from deeper in it. Two hops put a member or
// two in the table (the nodes that answered) and up to 2K in the node
// cache. A bucket that holds somebody, but fewer than K, is left to fill
// as its nodes query us (each such querier is pinged and taken in while
// the bucket has room), which costs the network nothing extra: asking
// into every such bucket at each Bootstrap was most of what joining cost.
const refreshHops = 2

// refreshBucket asks, refreshHops times in turn, the known node nearest t
// that it has not asked yet, unless t's bucket has a member.
func (n *Node) refreshBucket(ctx context.Context, t routing.ID) {
	cs, err := n.closest(ctx, t, 1)
	if err != nil || len(cs) == 1 && routing.CommonPrefixLen(cs[0].ID, n.ID()) == routing.CommonPrefixLen(t, n.ID()) {
		return // the bucket has a member: the nodes that query us fill the rest
	}
	asked := make(map[netip.AddrPort]bool)
	for range refreshHops {
		to, ok := n.fillTarget(ctx, t, asked)
		if !ok {
			return
		}
		asked[to] = true
		n.fillQuery(ctx, to, t)
	}
}

// Filling the node cache: a lookup starts from the cached nodes nearest
// its target, so the cache is worth most when it covers the whole key
// space evenly, which the nodes our own lookups meet (near their targets,
// and at first mostly near our own ID) do not. One find_node, sent to the
// known node nearest a target, brings about the K nodes nearest that
// target; fillQueries of them, for targets spread evenly over the key
// space, leave a known node within about log2(fillQueries)+3 bits of any
// target. The fill asks only for the regions (targets' first
// log2(fillQueries) bits) where the cache holds no node yet: most are
// covered already by what the own-ID lookup, the bucket refreshes, the
// nodes that query us (they enter the cache) and the answers to our
// checks of them (see verify) brought, and a later Bootstrap finds few or
// no holes. 64 queries at every Bootstrap were most of what joining cost
// the network; 32, holes only, cost a few.
const (
	fillQueries  = 32 // per Bootstrap, at most; a power of two
	fillParallel = 8
)

// fillCache sends up to fillQueries find_node queries, the j-th for a
// random target whose top bits are j bit-reversed, each to the known node
// nearest its target that this fill has not asked yet, skipping the
// targets whose region the cache already holds a node in. It does nothing
// once the cache holds a quarter of its capacity.
func (n *Node) fillCache(ctx context.Context) {
	if !n.cache.enabled() || n.cache.len() >= n.cfg.NodeCacheSize/4 {
		return
	}
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	asked := make(map[netip.AddrPort]bool)
	done := make(chan struct{}, fillParallel)
	inflight := 0
	regionBits := bits.Len(fillQueries - 1)
	shift := 8 - regionBits
	for j := 0; ; {
		for inflight < fillParallel && j < fillQueries && ctx.Err() == nil {
			// The j-th target's top bits are j bit-reversed: 0, 1/2,
			// 1/4, 3/4... of the key space, so the first answers come
			// from all over it. In counting order the first dozen
			// targets would share a quarter of the space, whose nodes
			// name only each other, and a small network's fill could
			// run out of unasked nodes there before reaching the rest.
			t := routing.RandomID(r)
			t[0] = bits.Reverse8(byte(j)) | t[0]&(1<<shift-1)
			if cs := n.cache.closest(t, 1); len(cs) == 1 && routing.CommonPrefixLen(cs[0].ID, t) >= regionBits {
				j++
				continue // covered
			}
			to, ok := n.fillTarget(ctx, t, asked)
			if !ok {
				break // until an answer brings someone new to ask
			}
			asked[to] = true
			j++
			inflight++
			go func() {
				n.fillQuery(ctx, to, t)
				done <- struct{}{}
			}()
		}
		if inflight == 0 {
			return
		}
		<-done
		inflight--
	}
}

// fillTarget picks the known node nearest t that this fill has not asked.
func (n *Node) fillTarget(ctx context.Context, t routing.ID, asked map[netip.AddrPort]bool) (netip.AddrPort, bool) {
	cs, err := n.closest(ctx, t, routing.K)
	if err != nil {
		return netip.AddrPort{}, false
	}
	// Enough that one is unasked, if the cache holds one.
	cs = append(cs, n.cache.closest(t, len(asked)+1)...)
	slices.SortFunc(cs, func(a, b routing.Contact) int { return a.ID.Distance(t).Cmp(b.ID.Distance(t)) })
	for _, c := range cs {
		if !asked[c.Addr] && n.usable(c.Addr) && c.Addr != n.Addr() {
			return c.Addr, true
		}
	}
	return netip.AddrPort{}, false
}

// fillQuery asks addr for the nodes nearest t and caches them.
func (n *Node) fillQuery(ctx context.Context, addr netip.AddrPort, t routing.ID) {
	start := time.Now() // a round trip, on the wall clock as in newLookup
	// info_hash as well as target: see lookup.send.
	args := &krpc.Args{ID: n.ID(), Target: &t, InfoHash: &t}
	both := n.sibHungry()
	if both {
		args.Want = wantBoth
	}
	resp, err := n.tr.Query(ctx, addr, krpc.MethodFindNode, args)
	if err != nil {
		if errors.Is(err, krpc.ErrTimeout) {
			n.cache.remove(addr)
			_ = n.post(ctx, failedEvent{addr: addr})
		}
		return
	}
	n.rtt.observe(time.Since(start))
	c := routing.Contact{ID: resp.R.ID, Addr: addr}
	_ = n.post(ctx, respondedEvent{c: c})
	n.noteIP(addr, resp)
	n.remember(c)
	for _, nc := range answerNodes(resp.R.Nodes) {
		n.learn(nc, both)
	}
	for _, nc := range answerNodes(resp.R.Nodes6) {
		n.learn(nc, both)
	}
}
