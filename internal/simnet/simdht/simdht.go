// Package simdht builds DHT networks on a simulated network (simnet), of
// our nodes or of anacrolix/dht servers, started warm: every node's table
// is drawn from the global view, as a long-running node's would be, rather
// than built by a bootstrap each. A share of the addresses never answer,
// and churn replaces nodes as their sessions end. The addresses are
// private ones, or with Options.BEP42 public ones with BEP 42 IDs, where
// liars can be packed into few /24s. Test support only.
package simdht

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	adht "github.com/anacrolix/dht/v2"
	akrpc "github.com/anacrolix/dht/v2/krpc"

	"node/dht"
	"node/internal/adversary"
	"node/internal/dhttest"
	"node/internal/simnet"
	"node/krpc"
	"node/routing"
)

// Impl names an implementation.
type Impl string

const (
	Ours      Impl = "ours"
	Anacrolix Impl = "anacrolix"
)

const (
	// NodeCacheSize is our nodes' node cache in a simulation: a few
	// hundred entries keep 100,000 nodes in memory, where the default is
	// sized for one node per process.
	NodeCacheSize = 256
	// TickInterval is our nodes' maintenance period in a simulation: ten
	// times the default, so 100,000 nodes' ticks do not eat the machine;
	// everything a tick does is due every minutes, not seconds.
	TickInterval = 10 * time.Second
	// setupPings bounds the pings anacrolix servers send at once while
	// the network is set up.
	setupPings = 256
)

// Options describe a network.
type Options struct {
	Impl  Impl
	Nodes int    // addresses, silent ones included
	Seed  uint64 // IDs, placement, sessions
	Model simnet.Config
	// Silent is the share of addresses that never answer.
	Silent float64
	// Liars is the share of addresses that answer every query with
	// fabricated closer nodes and fabricated peers
	// (adversary.CloserLiar), pointing at each other and at the silent
	// addresses. They never leave.
	Liars float64
	// Ring makes the liars one adversary.LiarRing instead: they name only
	// each other, and each answers under the ID it was named with.
	Ring bool
	// CompliantRing makes the ring name its members under the IDs BEP 42
	// makes valid for their addresses nearest the target
	// (adversary.NewCompliantLiarRing); with Ring.
	CompliantRing bool
	// Churn, when its Speedup is set, ends sessions and starts new nodes.
	Churn Churn
	// BEP42 gives every node a public address, each honest one in a /24
	// of its own, and an ID that BEP 42 makes valid for it, as compliant
	// nodes on the live DHT have. Without it the addresses are
	// 10.0.0.0/8's, which BEP 42 exempts, and the IDs are random.
	BEP42 bool
	// LiarSubnets, with BEP42, packs the liars into this many /24s (at
	// most 254 in each, so there may be more): an attacker that owns few
	// address blocks. 0 puts each liar in a /24 of its own, as if the
	// attacker owned as many blocks as nodes.
	LiarSubnets int
}

// Churn is the session model: lengths from a Pareto distribution of
// shape Shape and median Median (simulated time), played Speedup times
// faster than real time. A node's first session is a uniform share of one
// such length (it was already running when the simulation began). Every
// node that leaves is replaced by a new one at a new address, starting
// from a table drawn from the initial global view (a stale saved state,
// as a returning node's is).
type Churn struct {
	Median  time.Duration
	Shape   float64
	Speedup float64
}

// DefaultChurn: median session an hour (live-DHT measurements find
// median sessions from tens of minutes to a few hours), shape 1.5 (a
// heavy tail: a few nodes stay for days), played 10 times faster, so the
// median session is six real minutes and a run of a minute or two sees a
// tenth of the nodes replaced, and those it replaces are the ones that
// the tables and the stored peers still point at.
var DefaultChurn = Churn{Median: time.Hour, Shape: 1.5, Speedup: 10}

// Network is a running DHT network.
type Network struct {
	Opt Options
	Net *simnet.Network

	ids    []routing.ID     // by index
	addrs  []netip.AddrPort // by index
	index  map[netip.Addr]int
	sorted []int32 // indices sorted by ID
	rng    *rand.Rand

	mu       sync.Mutex
	members  []*Member
	sessions []session // a min-heap by end
	pinned   map[int]bool
	joined   atomic.Int64
	left     atomic.Int64

	stop    chan struct{}
	churnWG sync.WaitGroup
	liarWG  sync.WaitGroup
}

// Member is one address of the network.
type Member struct {
	ID     routing.ID
	Conn   *simnet.Conn
	Silent bool
	Liar   bool
	ours   *dht.Node
	theirs *adht.Server
	gone   atomic.Bool
}

// Addr is the member's address.
func (m *Member) Addr() netip.AddrPort { return m.Conn.AddrPort() }

// Gone reports whether the member has left.
func (m *Member) Gone() bool { return m.gone.Load() }

type session struct {
	end time.Time
	i   int
}

// isQuery picks KRPC queries: "y" is "q", which sorted keys put last.
func isQuery(b []byte) bool { return bytes.Contains(b, []byte("1:y1:qe")) }

// Build starts a network. Setup runs with the model's delays and loss off
// (anacrolix servers ping their tables then, so that they hand out the
// nodes: it hands out only nodes that answered); Build turns them on
// before it returns.
func Build(ctx context.Context, opt Options) (*Network, error) {
	if opt.Nodes < 2 {
		return nil, errors.New("simdht: too few nodes")
	}
	opt.Model.Count = isQuery
	w := &Network{
		Opt:    opt,
		Net:    simnet.New(opt.Model),
		rng:    rand.New(rand.NewPCG(opt.Seed, opt.Seed+1)),
		pinned: make(map[int]bool),
		stop:   make(chan struct{}),
	}
	w.Net.SetIdeal(true)
	w.ids = make([]routing.ID, opt.Nodes)
	w.sorted = make([]int32, opt.Nodes)
	for i := range w.ids {
		w.ids[i] = routing.RandomID(w.rng)
		w.sorted[i] = int32(i)
	}
	slices.SortFunc(w.sorted, func(a, b int32) int { return bytes.Compare(w.ids[a][:], w.ids[b][:]) })
	silent, liar := make([]bool, opt.Nodes), make([]bool, opt.Nodes)
	for i := range silent {
		switch x := w.rng.Float64(); {
		case x < opt.Silent:
			silent[i] = true
		case x < opt.Silent+opt.Liars:
			liar[i] = true
		}
	}
	w.addrs = make([]netip.AddrPort, opt.Nodes)
	w.index = make(map[netip.Addr]int, opt.Nodes)
	liars := 0
	for i := range w.addrs {
		switch {
		case !opt.BEP42:
			w.addrs[i] = addrOf(i)
		case liar[i] && opt.LiarSubnets > 0:
			w.addrs[i] = liarAddr(liars, opt.LiarSubnets)
			liars++
		default:
			w.addrs[i] = publicAddr(i)
		}
		w.index[w.addrs[i].Addr()] = i
		if opt.BEP42 {
			w.ids[i] = routing.SecureID(w.addrs[i].Addr(), byte(w.rng.Uint32()), w.rng)
		}
	}
	if opt.BEP42 {
		slices.SortFunc(w.sorted, func(a, b int32) int { return bytes.Compare(w.ids[a][:], w.ids[b][:]) })
	}
	var mix adversary.CloserLiarMix
	for i := range silent {
		switch {
		case silent[i]:
			mix.Dead = append(mix.Dead, w.addrs[i])
		case liar[i]:
			mix.Accomplices = append(mix.Accomplices, w.addrs[i])
		}
	}
	mix.FakePeers = 8
	var ring *adversary.LiarRing
	if opt.Ring {
		own := make(map[netip.AddrPort]routing.ID)
		for i, l := range liar {
			if l {
				own[w.addrs[i]] = w.ids[i]
			}
		}
		ring = adversary.NewLiarRing(own, mix.FakePeers, opt.Seed)
		if opt.CompliantRing {
			ring = adversary.NewCompliantLiarRing(own, mix.FakePeers, opt.Seed)
		}
	}
	w.members = make([]*Member, opt.Nodes)
	for i := range opt.Nodes {
		if err := ctx.Err(); err != nil {
			w.Close()
			return nil, err
		}
		var m *Member
		var err error
		if liar[i] {
			reply := adversary.CloserLiar(mix, uint64(i))
			if ring != nil {
				reply = ring.Reply(w.addrs[i])
			}
			m, err = w.startLiar(w.addrs[i], w.ids[i], reply)
		} else {
			m, err = w.start(w.addrs[i], w.ids[i], silent[i])
		}
		if err != nil {
			w.Close()
			return nil, err
		}
		w.members[i] = m
	}
	if opt.Impl == Anacrolix {
		if err := w.pingTables(ctx, silent); err != nil {
			w.Close()
			return nil, err
		}
	}
	w.Net.SetIdeal(false)
	if opt.Churn.Speedup > 0 {
		now := time.Now()
		for i, m := range w.members {
			if !m.Silent && !m.Liar {
				w.sessions = append(w.sessions, session{end: now.Add(time.Duration(w.rng.Float64() * float64(w.sessionLen()))), i: i})
			}
		}
		slices.SortFunc(w.sessions, func(a, b session) int { return a.end.Compare(b.end) })
		w.churnWG.Add(1)
		go w.churn()
	}
	return w, nil
}

// sessionLen is a session's real length: Pareto, scaled by the speed-up.
func (w *Network) sessionLen() time.Duration {
	c := w.Opt.Churn
	xm := float64(c.Median) / math.Pow(2, 1/c.Shape)
	u := 1 - w.rng.Float64() // (0, 1]
	return time.Duration(xm / math.Pow(u, 1/c.Shape) / c.Speedup)
}

// start opens the next address and, unless it is silent, runs a node of
// the network's implementation there with a table drawn from the global
// view.
func (w *Network) start(a netip.AddrPort, id routing.ID, isSilent bool) (*Member, error) {
	c, err := w.Net.ListenAt(a, isSilent)
	if err != nil {
		return nil, err
	}
	m := &Member{ID: id, Conn: c, Silent: isSilent}
	if isSilent {
		return m, nil
	}
	contacts := w.tableOf(id)
	switch w.Opt.Impl {
	case Ours:
		st, err := dht.EncodeState(id, contacts)
		if err != nil {
			return nil, err
		}
		m.ours, err = dht.New(dht.Config{
			Conn:          c,
			WarmState:     st,
			NodeCacheSize: NodeCacheSize,
			TickInterval:  TickInterval,
		})
		if err != nil {
			return nil, err
		}
	case Anacrolix:
		cfg := adht.NewDefaultServerConfig()
		cfg.Conn = c
		cfg.NodeId = akrpc.ID(id)
		dhttest.Configure(cfg, func() []netip.AddrPort { return nil })
		// Its own resend delay, made for the internet's round trips; the
		// loopback one would resend before most answers could arrive.
		cfg.QueryResendDelay = nil
		s, err := adht.NewServer(cfg)
		if err != nil {
			return nil, err
		}
		for _, ct := range contacts {
			_ = s.AddNode(akrpc.NodeInfo{ID: akrpc.ID(ct.ID), Addr: akrpc.NodeAddr{IP: ct.Addr.Addr().AsSlice(), Port: int(ct.Addr.Port())}})
		}
		m.theirs = s
	default:
		return nil, fmt.Errorf("simdht: unknown implementation %q", w.Opt.Impl)
	}
	return m, nil
}

// startLiar opens the next address and answers there with reply.
func (w *Network) startLiar(a netip.AddrPort, id routing.ID, reply func(*krpc.Msg, netip.AddrPort) *krpc.Msg) (*Member, error) {
	c, err := w.Net.ListenAt(a, false)
	if err != nil {
		return nil, err
	}
	m := &Member{ID: id, Conn: c, Liar: true}
	w.liarWG.Add(1)
	go func() {
		defer w.liarWG.Done()
		adversary.ServeConn(c, reply)
	}()
	return m, nil
}

// addrOf is the private address of index i: simnet.Listen's i+1th.
func addrOf(i int) netip.AddrPort {
	j := uint32(i + 1)
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)}), 6881)
}

// publicFirst are the first octets of the public blocks handed out: none
// holds a range BEP 42 exempts (10/8, 127/8, 169.254/16, 172.16/12,
// 192.168/16).
var publicFirst = func() []byte {
	var out []byte
	for o := 11; o < 224; o++ {
		if o != 127 && o != 169 && o != 172 && o != 192 {
			out = append(out, byte(o))
		}
	}
	return out
}()

// subnetAddr is host h of the sn-th public /24.
func subnetAddr(sn int, h byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{publicFirst[sn>>16%len(publicFirst)], byte(sn >> 8), byte(sn), h}), 6881)
}

// liarSubnetBase is the first /24 number of the liars' blocks, far past
// any index an honest node's gets.
const liarSubnetBase = 200 << 16

// publicAddr is the public address of index i: a /24 of its own.
func publicAddr(i int) netip.AddrPort { return subnetAddr(i+1, 1) }

// liarAddr is the k-th liar's address when the liars share subnets /24s
// (254 hosts each; more liars take more blocks).
func liarAddr(k, subnets int) netip.AddrPort {
	per := 254
	if subnets*per < k+1 {
		return subnetAddr(liarSubnetBase+k/per, byte(1+k%per))
	}
	return subnetAddr(liarSubnetBase+k%subnets, byte(1+k/subnets))
}

// tableOf draws a long-running node's table from the initial global view:
// for each bucket (the IDs sharing exactly d leading bits with id), K of
// the nodes whose IDs fall in it, or all if fewer, silent ones included as
// they would be in answers on the live DHT.
func (w *Network) tableOf(id routing.ID) []routing.Contact {
	var out []routing.Contact
	idx := func(x routing.ID) int {
		i, _ := slices.BinarySearchFunc(w.sorted, x, func(s int32, t routing.ID) int { return bytes.Compare(w.ids[s][:], t[:]) })
		return i
	}
	w.mu.Lock()
	r := w.rng
	defer w.mu.Unlock()
	for d := range 160 {
		lo, hi := id, id
		lo[d/8] ^= 0x80 >> (d % 8)
		hi[d/8] ^= 0x80 >> (d % 8)
		for b := d + 1; b < 160; b++ {
			lo[b/8] &^= 0x80 >> (b % 8)
			hi[b/8] |= 0x80 >> (b % 8)
		}
		i, j := idx(lo), idx(hi)
		if j < len(w.sorted) && w.ids[w.sorted[j]] == hi {
			j++
		}
		n := j - i
		pick := func(k int) {
			s := w.sorted[k]
			if w.ids[s] != id {
				out = append(out, routing.Contact{ID: w.ids[s], Addr: w.addrs[s]})
			}
		}
		if n <= routing.K {
			for k := i; k < j; k++ {
				pick(k)
			}
		} else {
			// K distinct of n, without an O(n) permutation: n is half
			// the network for the first bucket.
			var chosen [routing.K]int
			for c := 0; c < routing.K; {
				k := r.IntN(n)
				if !slices.Contains(chosen[:c], k) {
					chosen[c] = k
					c++
					pick(i + k)
				}
			}
		}
		if w.deeperEmpty(id, d) {
			break // the deepest occupied bucket is done
		}
	}
	return out
}

// deeperEmpty reports whether no node but id shares more than d leading
// bits with id.
func (w *Network) deeperEmpty(id routing.ID, d int) bool {
	lo, hi := id, id
	for b := d + 1; b < 160; b++ {
		lo[b/8] &^= 0x80 >> (b % 8)
		hi[b/8] |= 0x80 >> (b % 8)
	}
	cmpID := func(s int32, t routing.ID) int { return bytes.Compare(w.ids[s][:], t[:]) }
	i, _ := slices.BinarySearchFunc(w.sorted, lo, cmpID)
	j, _ := slices.BinarySearchFunc(w.sorted, hi, cmpID)
	if j < len(w.sorted) && w.ids[w.sorted[j]] == hi {
		j++
	}
	n := j - i
	if _, found := slices.BinarySearchFunc(w.sorted, id, cmpID); found {
		n--
	}
	return n <= 0
}

// pingTables has every anacrolix server ping the answering nodes of its
// table, which a long-running one would have heard from.
func (w *Network) pingTables(ctx context.Context, silent []bool) error {
	type job struct {
		s *adht.Server
		a *net.UDPAddr
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range setupPings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.s.Ping(j.a)
			}
		}()
	}
	var err error
feed:
	for _, m := range w.members {
		if m.theirs == nil {
			continue
		}
		for _, ni := range m.theirs.Nodes() {
			ua := ni.Addr.UDP()
			ap := ua.AddrPort()
			i, ok := w.index[ap.Addr().Unmap()]
			if !ok || i >= len(silent) || silent[i] {
				continue
			}
			select {
			case jobs <- job{m.theirs, ua}:
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	return err
}

// Pin keeps member i from leaving: announcers and lookers, whose peers
// and lookups are what is measured.
func (w *Network) Pin(i int) {
	w.mu.Lock()
	w.pinned[i] = true
	w.mu.Unlock()
}

// Members is a snapshot of the members, departed ones included.
func (w *Network) Members() []*Member {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.members)
}

// Churned is how many nodes left and joined so far.
func (w *Network) Churned() (left, joined int64) { return w.left.Load(), w.joined.Load() }

func (w *Network) churn() {
	defer w.churnWG.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			for {
				w.mu.Lock()
				if len(w.sessions) == 0 || w.sessions[0].end.After(now) {
					w.mu.Unlock()
					break
				}
				s := w.sessions[0]
				w.sessions = w.sessions[1:]
				if w.pinned[s.i] {
					w.mu.Unlock()
					continue
				}
				m := w.members[s.i]
				w.mu.Unlock()
				m.close()
				w.left.Add(1)
				// Only this goroutine adds members: the new one's index
				// is the next.
				w.mu.Lock()
				next := len(w.members)
				a, id := addrOf(next), routing.RandomID(w.rng)
				if w.Opt.BEP42 {
					a = publicAddr(next)
					id = routing.SecureID(a.Addr(), byte(w.rng.Uint32()), w.rng)
				}
				w.mu.Unlock()
				nm, err := w.start(a, id, false)
				if err != nil {
					continue // the network is closing
				}
				w.joined.Add(1)
				w.mu.Lock()
				w.members = append(w.members, nm)
				end := now.Add(w.sessionLen())
				i, _ := slices.BinarySearchFunc(w.sessions, end, func(s session, t time.Time) int { return s.end.Compare(t) })
				w.sessions = slices.Insert(w.sessions, i, session{end: end, i: len(w.members) - 1})
				w.mu.Unlock()
			}
		}
	}
}

func (m *Member) close() {
	if m.gone.Swap(true) {
		return
	}
	switch {
	case m.ours != nil:
		m.ours.Close()
	case m.theirs != nil:
		m.theirs.Close()
	default:
		m.Conn.Close()
	}
}

// Close stops churn, every node and the network.
func (w *Network) Close() {
	close(w.stop)
	w.churnWG.Wait()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, m := range w.Members() {
		if m == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m.close()
		}()
	}
	wg.Wait()
	w.liarWG.Wait() // their conns are closed now
	w.Net.Close()
}

// Announce announces ih at port from member m.
func (w *Network) Announce(ctx context.Context, m *Member, ih routing.ID, port int) error {
	if m.ours != nil {
		_, err := m.ours.Announce(ctx, ih, port, nil)
		return err
	}
	return traverse(ctx, m.theirs, ih, func(netip.AddrPort) {}, adht.AnnouncePeer(adht.AnnouncePeerOpts{Port: port}))
}

// Lookup looks ih up from member m, calling found with each peer as it
// arrives.
func (w *Network) Lookup(ctx context.Context, m *Member, ih routing.ID, found func(netip.AddrPort)) error {
	if m.ours != nil {
		ch := make(chan netip.AddrPort, 64)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for p := range ch {
				found(p)
			}
		}()
		_, err := m.ours.GetPeers(ctx, ih, ch)
		close(ch)
		<-done
		return err
	}
	return traverse(ctx, m.theirs, ih, found)
}

func traverse(ctx context.Context, s *adht.Server, ih routing.ID, found func(netip.AddrPort), opts ...adht.AnnounceOpt) error {
	a, err := s.AnnounceTraversal(ih, opts...)
	if err != nil {
		return err
	}
	defer a.Close()
	stop := context.AfterFunc(ctx, a.Close)
	defer stop()
	for pv := range a.Peers {
		for _, p := range pv.Peers {
			ip, _ := netip.AddrFromSlice(p.IP)
			found(netip.AddrPortFrom(ip.Unmap(), uint16(p.Port)))
		}
	}
	<-a.Finished()
	return ctx.Err()
}

// Responsive lists the indices of honest members that answer and have
// not left.
func (w *Network) Responsive() []int {
	var out []int
	for i, m := range w.Members() {
		if !m.Silent && !m.Liar && !m.Gone() {
			out = append(out, i)
		}
	}
	return out
}

// QueriesIn is the queries each honest answering member was delivered so far.
func (w *Network) QueriesIn() map[*Member]uint32 {
	return w.honestCounts(func(in, _ uint32) uint32 { return in })
}

// QueriesOut is the queries each honest answering member sent so far.
func (w *Network) QueriesOut() map[*Member]uint32 {
	return w.honestCounts(func(_, sent uint32) uint32 { return sent })
}

// honestCounts is pick of each honest answering member's query counts.
func (w *Network) honestCounts(pick func(in, sent uint32) uint32) map[*Member]uint32 {
	out := make(map[*Member]uint32)
	for _, m := range w.Members() {
		if !m.Silent && !m.Liar {
			out[m] = pick(m.Conn.Counted())
		}
	}
	return out
}
