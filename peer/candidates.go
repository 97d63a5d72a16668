package peer

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Bounds on whom we talk to. One address, one source (a DHT node, a
// tracker, a peer) or one network must not be able to take the torrent's
// connection slots or its list of peers to dial.
const (
	// maxConnsPerIP bounds the connections, both ways, to one IPv4
	// address or one IPv6 /64 (one host or one home network: a /64 is
	// the smallest block handed out). libtorrent and Transmission allow
	// one; we allow a few more, for the clients that share one address
	// behind a NAT (a household, a carrier-grade NAT), which are distinct
	// peers with distinct data. Three of DefaultMaxConns is 6%: an
	// address that squats them holds nothing worth having.
	maxConnsPerIP = 3
	// maxPendingHandshakes bounds the incoming connections whose
	// handshake is in progress, each a goroutine that waits up to
	// handshakeTimeout; beyond it new connections are closed at once.
	// Each address may hold maxConnsPerIP of them, so filling them takes
	// many addresses and only delays incoming peers (we still dial out).
	maxPendingHandshakes = 32
	// maxAddrsPerSource bounds the candidates one source (the DHT node,
	// tracker or peer that named them, by IP or IPv6 /64) may have in the
	// list. An honest DHT node names at most 100 peers in an answer
	// (libtorrent's max_peers_reply, and what fits one packet with room
	// to spare), a tracker about 50 per announce. A full source's new
	// candidate replaces its least promising one that we are not
	// connected to (see makeRoom): a tracker names new peers all the
	// while, and those it named that connected stay in the list.
	maxAddrsPerSource = 100
	// maxSelfAddrs bounds the addresses remembered as our own because a
	// dial there reached us (our external address or a wildcard
	// listener's, named back to us by the DHT or a peer): a host has few.
	// Beyond it the oldest is forgotten. A dial that gets our peer ID
	// back counts only if our listener saw it come in (see selfIn): a
	// peer echoing our ID cannot push our own addresses out.
	maxSelfAddrs = 16
	// maxDialFailures is how many failed dials in a row, with growing
	// pauses (about 10 minutes in all), drop a candidate from the list.
	maxDialFailures = 6
	// Peer turnover: while we download with every slot taken and have
	// peers to try, every turnoverEvery up to turnoverPeers connections
	// that gave us nothing are closed to make room for them, as
	// libtorrent's peer_turnover does. A peer with nothing we want is
	// given turnoverIdle from its connection, one with something we want
	// but which sends nothing turnoverStarved since its last block (a
	// choker may take a few rounds to get to us). A peer turned out may
	// not come back for turnoverCooldown. Before the metadata, a
	// metadata piece we asked for counts as something, and a peer we have
	// asked has turnoverStarved from that request to answer.
	turnoverEvery    = 10 * time.Second
	turnoverPeers    = 4
	turnoverIdle     = 10 * time.Second
	turnoverStarved  = time.Minute
	turnoverCooldown = 5 * time.Minute
)

var errTurnedOver = errors.New("turned over: gave us nothing while others wait for the slot")

// turnoverTimes are the turnover durations above, held by the Torrent so
// that tests can shrink them.
type turnoverTimes struct {
	every, idle, starved, cooldown time.Duration
}

var defaultTurnover = turnoverTimes{turnoverEvery, turnoverIdle, turnoverStarved, turnoverCooldown}

// ipKey is what the per-address bounds count by: the IPv4 address, or the
// IPv6 /64.
func ipKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// addrClass orders addresses from the most widely reachable to the most
// local.
type addrClass uint8

const (
	classPublic addrClass = iota
	classPrivate
	classLoopback
	// classNever: no peer can be there (unspecified, multicast,
	// broadcast, reserved).
	classNever
)

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598, a carrier's private space
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	reserved4 = netip.MustParsePrefix("240.0.0.0/4") // and broadcast
	siteLocal = netip.MustParsePrefix("fec0::/10")
)

func classOf(a netip.Addr) addrClass {
	a = a.Unmap()
	switch {
	case !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || thisNet.Contains(a) || reserved4.Contains(a):
		return classNever
	case a.IsLoopback():
		return classLoopback
	case a.IsPrivate() || a.IsLinkLocalUnicast() || cgnat.Contains(a) || siteLocal.Contains(a):
		return classPrivate
	}
	return classPublic
}

// allowedFrom reports whether we may dial a, named by the node at src (a
// zero src: the user named it, in a magnet link or on the command line).
// No source may send us to a port 0 or to an address where no peer can
// be; and a stranger may not send us to addresses more local than its own:
// a public node naming a host on our LAN or our own machine gets us to
// open connections there on its behalf.
func allowedFrom(a netip.AddrPort, src netip.Addr) bool {
	if !src.IsValid() {
		return allowedFromClass(classOf, a, classNever)
	}
	return allowedFromClass(classOf, a, classOf(src))
}

// allowedFromClass is allowedFrom for a source of class src (classNever
// for the user, who may name anything a peer can be at), with classify
// placing addresses (classOf, or a test's stand-in).
func allowedFromClass(classify func(netip.Addr) addrClass, a netip.AddrPort, src addrClass) bool {
	if !a.IsValid() || a.Port() == 0 {
		return false
	}
	c := classify(a.Addr())
	return c != classNever && c <= src
}

// candKind is who named a candidate, from the most trusted.
type candKind uint8

const (
	fromUser candKind = iota // a magnet's x.pe, the command line
	// fromDHT: a DHT node's answer; fromTracker: a tracker's. Both name
	// the peers that announced to them, and rank alike (see rank); a
	// private torrent (BEP 27) may use only the tracker's.
	fromDHT
	fromTracker
	// fromPex: a connected peer, in a ut_pex message. A DHT node names
	// peers that announced to it; a peer names whatever it likes, and
	// only the per-source bounds hold it back.
	fromPex
	// fromHint: a connected peer's own other address (BEP 7 ipv4 or
	// ipv6 in its extended handshake).
	fromHint
)

// rank orders kinds of source from the most trusted.
func (k candKind) rank() int {
	if k == fromTracker {
		return int(fromDHT)
	}
	return int(k)
}

// candidate is an address we may dial.
type candidate struct {
	failures int       // dials in a row that failed
	next     time.Time // not dialled before
	added    time.Time
	src      netip.Prefix // ipKey of the DHT node, tracker or peer that named it; invalid when the user did
	kind     candKind
	seed     bool // its PEX source says it is a seed: of no use once we are one
	// by: for a fromHint, the peer ID of the peer that named it; not
	// dialled while that peer is connected: it would be the same peer
	// again.
	by [20]byte
	// dialing: a dial to it is in flight, whose outcome is still to be
	// recorded (see makeRoom).
	dialing bool
}

// source is what we know of one DHT node, tracker or peer (by ipKey) that
// named candidates.
type source struct {
	addrs  int // its candidates in the list
	failed int // dials to them that failed, less those that worked
}

// addCandidate adds a, named by the DHT node or tracker at from (invalid:
// by the user), to the addresses to dial, within the bounds above. A full
// list makes room by dropping the least promising candidates, so that new
// sources always get in.
func (t *Torrent) addCandidate(a, from netip.AddrPort, now time.Time) {
	kind := fromDHT
	if !from.IsValid() {
		kind = fromUser
	}
	t.addCandidateFrom(a, from, kind, false, now)
}

// addCandidateFrom is addCandidate for a source of any kind. It returns
// the new candidate; nil if a is refused or already known. A known
// address named again by a more trusted kind of source takes its kind
// (and a tracker's word that of a DHT node: a private torrent keeps
// only the tracker's): a PEX peer's word (that it is a seed, say) must
// not outweigh the DHT's or a tracker's. It stays in the count of the
// source that named it first, unless the user named it: moved into the
// new source's count, it would be among those the new source's next
// names replace (see makeRoom), and a hostile DHT node or tracker could
// so evict the candidates peers named.
func (t *Torrent) addCandidateFrom(a, from netip.AddrPort, kind candKind, seed bool, now time.Time) *candidate {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	src := from.Addr().Unmap()
	srcClass := classNever
	if src.IsValid() {
		srcClass = t.classify(src)
	}
	if !allowedFromClass(t.classify, a, srcClass) || t.banned[a.Addr()] || t.isSelf(a) ||
		kind >= fromPex && t.pexOff() {
		return nil
	}
	for _, ln := range t.lns {
		if addrOf(ln.Addr()) == a {
			return nil // our own announce, coming back from the DHT
		}
	}
	var key netip.Prefix
	if src.IsValid() {
		key = ipKey(src)
	}
	if cd, ok := t.known[a]; ok {
		if kind.rank() < cd.kind.rank() || kind == fromTracker && cd.kind == fromDHT {
			if kind == fromUser {
				t.moveSource(cd, netip.Prefix{})
			}
			cd.kind, cd.seed, cd.by = kind, seed, [20]byte{}
		}
		return nil
	}
	if !t.makeRoom(key, a) {
		return nil
	}
	if len(t.known) >= maxKnownAddrs {
		t.pruneCandidates(now)
	}
	cd := &candidate{added: now, kind: kind, seed: seed}
	t.known[a] = cd
	t.moveSource(cd, key)
	return cd
}

// makeRoom reports whether the source key may name one more candidate
// (other than keep), dropping its least promising one if it is full: the
// one that failed most, then the oldest, among those that were dialled
// and failed, with no dial in flight, that we are not connected to. A
// source with none such is refused, and counted (Stats.SourceFull):
// a source that floods the list with new names must not push out its
// candidates that were never tried, nor those that failed once, ranked
// after a flood of untried ones; and a candidate whose dial is in flight
// must stay to have the dial's outcome recorded (and not be dialled
// again at once, named anew).
func (t *Torrent) makeRoom(key netip.Prefix, keep netip.AddrPort) bool {
	s := t.sources[key]
	if !key.IsValid() || s == nil || s.addrs < maxAddrsPerSource {
		return true
	}
	conn := make(map[netip.AddrPort]bool, len(t.peers))
	for c := range t.peers {
		conn[c.addr] = true
	}
	var worst netip.AddrPort
	var wcd *candidate
	for a, cd := range t.known {
		if cd.src != key || a == keep || conn[a] || cd.failures == 0 || cd.dialing {
			continue
		}
		if wcd == nil || cd.failures > wcd.failures || cd.failures == wcd.failures && cd.added.Before(wcd.added) {
			worst, wcd = a, cd
		}
	}
	if wcd == nil {
		t.stats.sourceFull++
		return false
	}
	t.dropCandidate(worst)
	t.stats.sourceReplaced++
	return true
}

// moveSource makes key (invalid: the user) cd's source, moving its count.
func (t *Torrent) moveSource(cd *candidate, key netip.Prefix) {
	if s := t.sources[cd.src]; s != nil && cd.src.IsValid() {
		if s.addrs--; s.addrs <= 0 {
			delete(t.sources, cd.src)
		}
	}
	cd.src = key
	if key.IsValid() {
		s := t.sources[key]
		if s == nil {
			s = &source{}
			t.sources[key] = s
		}
		s.addrs++
	}
}

// isSelf reports whether a dial to a reached us before (see selfDialled).
func (t *Torrent) isSelf(a netip.AddrPort) bool {
	return slices.Contains(t.self, a)
}

// selfDialled remembers a, where a dial reached ourselves, and forgets it
// as a candidate: our external address, or a wildcard listener's, comes
// back from every lookup, and would be dialled again and again.
func (t *Torrent) selfDialled(a netip.AddrPort) {
	t.dropCandidate(a)
	if t.isSelf(a) {
		return
	}
	if len(t.self) >= maxSelfAddrs {
		t.self = slices.Delete(t.self, 0, 1)
	}
	t.self = append(t.self, a)
}

// dropCandidate forgets a.
func (t *Torrent) dropCandidate(a netip.AddrPort) {
	cd := t.known[a]
	if cd == nil {
		return
	}
	delete(t.known, a)
	t.moveSource(cd, netip.Prefix{})
}

// pruneCandidates drops an eighth of the list, the least promising first:
// those that failed most, then those of the sources that named the most,
// then the oldest. Peers we are connected to stay.
func (t *Torrent) pruneCandidates(now time.Time) {
	type entry struct {
		a  netip.AddrPort
		cd *candidate
	}
	connected := make(map[netip.AddrPort]bool, len(t.peers))
	for c := range t.peers {
		connected[c.addr] = true
	}
	all := make([]entry, 0, len(t.known))
	for a, cd := range t.known {
		if !connected[a] {
			all = append(all, entry{a, cd})
		}
	}
	srcAddrs := func(cd *candidate) int {
		if s := t.sources[cd.src]; s != nil {
			return s.addrs
		}
		return 0
	}
	slices.SortFunc(all, func(x, y entry) int {
		if x.cd.failures != y.cd.failures {
			return y.cd.failures - x.cd.failures
		}
		if sx, sy := srcAddrs(x.cd), srcAddrs(y.cd); sx != sy {
			return sy - sx
		}
		return x.cd.added.Compare(y.cd.added)
	})
	for _, e := range all[:min(len(all), max(1, maxKnownAddrs/8))] {
		t.dropCandidate(e.a)
	}
}

// dialFailed backs a off, and drops it after maxDialFailures.
func (t *Torrent) dialFailed(a netip.AddrPort, now time.Time) {
	cd := t.known[a]
	if cd == nil {
		return
	}
	if s := t.sources[cd.src]; s != nil {
		s.failed++
	}
	cd.failures++
	if cd.failures >= maxDialFailures {
		t.dropCandidate(a)
		return
	}
	cd.next = now.Add(time.Duration(1<<min(cd.failures, 6)) * 5 * time.Second)
}

// dialStarted and dialEnded count the dials in flight to each address
// (see dialable).
func (t *Torrent) dialStarted(a netip.AddrPort) {
	t.dialsTo[ipKey(a.Addr())]++
	if cd := t.known[a]; cd != nil {
		cd.dialing = true
	}
}

func (t *Torrent) dialEnded(a netip.AddrPort) {
	if cd := t.known[a]; cd != nil {
		cd.dialing = false
	}
	k := ipKey(a.Addr())
	if t.dialsTo[k]--; t.dialsTo[k] <= 0 {
		delete(t.dialsTo, k)
	}
}

// dialWorked clears a's record of failures, and some of its source's. A
// dial works when its connection joins the peers: one refused after the
// handshake (see refuse) failed, or the candidate would be dialled again
// as if new.
func (t *Torrent) dialWorked(a netip.AddrPort) {
	cd := t.known[a]
	if cd == nil {
		return
	}
	cd.failures = 0
	if s := t.sources[cd.src]; s != nil && s.failed > 0 {
		s.failed--
	}
}

// dialable lists up to n candidates to dial now, best first: those that
// failed fewer dials in a row first; then the user's, then the DHT's and
// trackers' alike, then PEX's, then peers' BEP 7 hints; then those of
// sources whose candidates worked before those of sources whose did not;
// then the newest. Not dialled: one whose source says it is a seed, while
// we want nothing (wantNothing); a hint of a peer we are connected to.
func (t *Torrent) dialable(now time.Time, n int) []netip.AddrPort {
	if n <= 0 || len(t.known) == 0 {
		// Without a candidate, spare the maps: every tick of every
		// torrent of a daemon gets here.
		return nil
	}
	// Dials in flight count against an address's maxConnsPerIP as its
	// connections do: one host listening on many ports must not take
	// every dial slot, for connections admitConn would refuse.
	perIP := make(map[netip.Prefix]int, len(t.peers)+len(t.dialsTo))
	conn := make(map[netip.AddrPort]bool, len(t.peers))
	ids := make(map[[20]byte]bool, len(t.peers))
	for c := range t.peers {
		perIP[ipKey(c.addr.Addr())]++
		conn[c.addr] = true
		ids[c.hs.PeerID] = true
	}
	for k, n := range t.dialsTo {
		perIP[k] += n
	}
	type entry struct {
		a         netip.AddrPort
		ip        netip.Prefix
		cd        *candidate
		srcFailed int
	}
	less := func(x, y entry) int {
		if x.cd.failures != y.cd.failures {
			return x.cd.failures - y.cd.failures
		}
		if rx, ry := x.cd.kind.rank(), y.cd.kind.rank(); rx != ry {
			return rx - ry
		}
		if x.srcFailed != y.srcFailed {
			return x.srcFailed - y.srcFailed
		}
		return y.cd.added.Compare(x.cd.added)
	}
	// The best n, kept sorted, with no address taking more than its
	// room under maxConnsPerIP: n is at most MaxDials, the list up to
	// maxKnownAddrs, and this runs for every address a lookup finds.
	best := make([]entry, 0, n)
	nothing := t.wantNothing()
	for a, cd := range t.known {
		k := ipKey(a.Addr())
		if now.Before(cd.next) || t.banned[a.Addr()] || conn[a] || perIP[k] >= maxConnsPerIP ||
			cd.seed && nothing || cd.kind == fromHint && ids[cd.by] {
			continue
		}
		e := entry{a: a, ip: k, cd: cd}
		if s := t.sources[cd.src]; s != nil {
			e.srcFailed = s.failed
		}
		if len(best) == n && less(e, best[n-1]) >= 0 {
			continue
		}
		// Its address's room is full: it may only replace the worst of
		// its own address.
		worst, same := -1, 0
		for i := range best {
			if best[i].ip == k {
				worst = i
				same++
			}
		}
		if perIP[k]+same >= maxConnsPerIP {
			if less(e, best[worst]) >= 0 {
				continue
			}
			best = slices.Delete(best, worst, worst+1)
		} else if len(best) == n {
			best = best[:n-1]
		}
		i, _ := slices.BinarySearchFunc(best, e, less)
		best = slices.Insert(best, i, e)
	}
	out := make([]netip.AddrPort, len(best))
	for i, e := range best {
		out[i] = e.a
	}
	return out
}

// admit counts one more connection whose handshake is in progress (see
// maxPendingHandshakes); false if there is no room for it.
func (h *handshakes) admit(k netip.Prefix) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total >= cmp.Or(h.max, maxPendingHandshakes) || h.perIP[k] >= maxConnsPerIP {
		return false
	}
	if h.perIP == nil {
		h.perIP = make(map[netip.Prefix]int)
	}
	h.total++
	h.perIP[k]++
	return true
}

func (h *handshakes) done(k netip.Prefix) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total--
	if h.perIP[k]--; h.perIP[k] <= 0 {
		delete(h.perIP, k)
	}
}

// handshakes counts the incoming handshakes in progress; acceptLoop's
// goroutines share it.
type handshakes struct {
	max   int // 0: maxPendingHandshakes
	mu    sync.Mutex
	total int
	perIP map[netip.Prefix]int
}

// admitConn reports why c may not join the peers, or nil.
func (t *Torrent) admitConn(c *conn, now time.Time) error {
	k := ipKey(c.addr.Addr())
	if !c.outgoing {
		if until, ok := t.turnedOut[k]; ok && now.Before(until) {
			return errors.New("turned over a short while ago")
		}
		// The slots our dials will fill are theirs: a peer that
		// connects to us as soon as one frees must not take it.
		if len(t.peers)+t.dialing >= t.cfg.MaxConns {
			return errors.New("no free slot")
		}
	}
	n := 0
	for other := range t.peers {
		if ipKey(other.addr.Addr()) == k {
			n++
		}
	}
	if n >= maxConnsPerIP {
		return errors.New("too many connections from this address")
	}
	return nil
}

// refuse closes c, a connection that may not join the peers; if we
// dialled it, the dial failed.
func (t *Torrent) refuse(c *conn, err error, now time.Time) {
	c.close(err)
	if c.outgoing {
		t.dialFailed(c.addr, now)
	}
}

// markUseful records that ps just gave us something (see turnoverEvery).
func (t *Torrent) markUseful(ps *peerState, now time.Time) {
	ps.usefulAt = now
	ps.metaAskedAt = time.Time{}
}

// metadataAsked records that we sent ps a metadata request: from the first
// one it has not answered, it has the starved grace to answer.
func (t *Torrent) metadataAsked(ps *peerState, now time.Time) {
	if ps.metaAskedAt.IsZero() {
		ps.metaAskedAt = now
	}
}

// metadataArriving is called with a metadata piece from ps before the
// fetch takes it: a piece we asked ps for is something, one we did not is
// nothing (else any peer could keep its slot by sending pieces unasked).
func (t *Torrent) metadataArriving(ps *peerState, piece int, now time.Time) {
	if t.fetch != nil && t.fetch.Asked(ps.c.addr.String(), piece) {
		t.markUseful(ps, now)
	}
}

// turnover closes peers that give us nothing when every slot is taken and
// there are untried candidates to put in their place (see turnoverEvery).
//
// Unlike libtorrent, it does not hold off while the download rate is
// high: it only closes peers that gave us nothing for a grace period, so a
// fast swarm loses nothing by it, and a few fast peers must not let
// squatters keep the other slots.
func (t *Torrent) turnover(now time.Time) {
	for _, ps := range t.peers {
		if d := ps.c.down.Load(); d != ps.lastDown {
			ps.lastDown = d
			t.markUseful(ps, now)
		}
	}
	if now.Sub(t.lastTurnover) < t.turn.every || len(t.peers) < t.cfg.MaxConns || t.wantNothing() {
		return
	}
	for k, until := range t.turnedOut {
		if !now.Before(until) {
			delete(t.turnedOut, k)
		}
	}
	room := len(t.dialable(now, turnoverPeers))
	if room == 0 {
		return
	}
	// nothing: the peer has nothing we want (or, before the metadata, no
	// way to give it to us).
	nothing := func(ps *peerState) bool {
		if t.info == nil {
			return ps.extMeta == 0
		}
		return !ps.amInterest
	}
	idleSince := func(ps *peerState) time.Time {
		if t.fetch != nil && ps.metaAskedAt.After(ps.usefulAt) {
			// Asked for a piece it has not sent yet: we chose it to
			// serve the metadata, perhaps as the one peer the fetch
			// now trusts; its grace runs from our request.
			return ps.metaAskedAt
		}
		return ps.usefulAt
	}
	var idle []*peerState
	for _, ps := range t.peers {
		grace := t.turn.starved
		if nothing(ps) {
			grace = t.turn.idle
		}
		if now.Sub(idleSince(ps)) >= grace {
			idle = append(idle, ps)
		}
	}
	slices.SortFunc(idle, func(x, y *peerState) int {
		if nx, ny := nothing(x), nothing(y); nx != ny {
			if nx {
				return -1
			}
			return 1
		}
		return idleSince(x).Compare(idleSince(y))
	})
	idle = idle[:min(len(idle), room)]
	if len(idle) == 0 {
		return
	}
	t.lastTurnover = now
	for _, ps := range idle {
		t.turnedOut[ipKey(ps.c.addr.Addr())] = now.Add(t.turn.cooldown)
		if cd := t.known[ps.c.addr]; cd != nil {
			cd.next = now.Add(t.turn.cooldown)
		}
		t.drop(ps.c, errTurnedOver)
	}
}
