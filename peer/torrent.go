package peer

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"node/dht"
	"node/metadata"
	"node/peer/tracker"
	"node/routing"
	"node/storage"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxConns     = 50
	DefaultMaxDials     = 16
	DefaultBufferBudget = 64 << 20 // bytes of pieces held in memory until verified
	DefaultUploadSlots  = 4
	maxKnownAddrs       = 2000
	tickEvery           = 250 * time.Millisecond
	// idleTickEvery is the tick of a torrent with nothing to fetch and no
	// peer connected or dialed: it only announces and saves, which a
	// couple of seconds' slack does not hurt, and a daemon seeding
	// hundreds of torrents would otherwise wake four times a second for
	// each. The first event that ends the idleness brings back tickEvery.
	idleTickEvery     = 2 * time.Second
	announceEvery     = 15 * time.Minute
	lookupEvery       = 20 * time.Second // while downloading and short of peers
	resumeEvery       = 5 * time.Second
	requestTimeout    = 30 * time.Second
	minRequestTimeout = 3 * time.Second
)

// ClientVersion is our BEP 10 "v".
const ClientVersion = "node 0.1"

// userAgent is what HTTP trackers are told we are.
const userAgent = "node/0.1"

// unknownLeft is the "left" announced before the metadata is known: not
// zero, which would make us a seed, to which trackers send no seeds.
const unknownLeft = 16 << 10

// Config configures a Torrent.
type Config struct {
	InfoHash metadata.InfoHash
	// Info is the torrent's info dictionary, or nil for a magnet link: it
	// is then fetched from peers with BEP 9.
	Info *metadata.Info
	// Dir is the download directory.
	Dir string
	// Listener accepts incoming peers; the Torrent closes it. Nil: no
	// incoming connections. A Mux's virtual listener (Mux.Listener)
	// shares one port, TCP and uTP, among the torrents of a process.
	Listener net.Listener
	// Listeners accept incoming peers too, after Listener: another
	// family or another interface. The Torrent closes them. The first of
	// all the listeners gives the port we announce and tell peers; the
	// others should listen on the same port, since a peer learns only
	// one. A listener on a specific IP (not a wildcard) also gives the
	// source address of our dials of its family (see Dial), and the
	// address of its family we tell peers of the other family (BEP 7).
	Listeners []net.Listener
	// DHT, if set, finds peers (get_peers) and announces us every 15
	// minutes on the first listener's port; usually a *dht.Node.
	DHT DHT
	// Peers are addresses to try first (a magnet's x.pe).
	Peers []netip.AddrPort
	// Trackers are BEP 12 tiers of tracker URLs (a magnet's tr, a
	// .torrent's announce-list), announced to on the Listener's port
	// while the torrent runs: their peers join the DHT's as candidates,
	// each tracker a source (see candidates.go). Nil: no tracker is
	// contacted.
	Trackers [][]string
	// MetadataOnly stops after fetching the info dictionary.
	MetadataOnly bool
	// NoDownload serves what is on disk without fetching anything
	// (node seed); pieces that fail their hash stay missing.
	NoDownload   bool
	MaxConns     int
	MaxDials     int
	BufferBudget int64
	// UploadSlots is how many interested peers are unchoked at once: the
	// fastest UploadSlots-1 by tit-for-tat, plus one optimistic unchoke
	// (see choke.go). Default DefaultUploadSlots.
	UploadSlots int
	// MaxUploadRate and MaxDownloadRate cap the piece payload sent and
	// received, in bytes per second over all of the torrent's peers; 0 is
	// unlimited. Protocol messages other than pieces are not counted.
	MaxUploadRate   int64
	MaxDownloadRate int64
	// UploadLimit and DownloadLimit, if set, are limits shared with other
	// torrents (see NewRateLimit): the torrent honours them and its own
	// MaxUploadRate and MaxDownloadRate both.
	UploadLimit, DownloadLimit *RateLimit
	// OSCache writes verified pieces through the operating system's page
	// cache. By default they are written with direct I/O where the file
	// system allows it (see storage.SetDirectIO): a download is not read
	// back while it runs, and copying it into the page cache is most of
	// the CPU a fast download costs.
	OSCache bool
	// Overwrite lets the download write over files that were already at
	// the torrent's paths and hold other data (see storage.Recover);
	// without it the torrent stops with storage.ErrForeignData. Pieces
	// that verify are kept either way.
	Overwrite bool
	// Dial opens a connection; default net.Dialer with a 5 s timeout,
	// from the IP of the listener of the address's family when that
	// listener is on a specific IP (so the peer sees the address we
	// listen on), else from the address the kernel picks.
	Dial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// UTPDial, if set, opens a uTP connection (BEP 29). Dials try it
	// first and fall back to Dial (see connect in utp.go); a uTP
	// listener goes among Listeners.
	UTPDial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	Logger  *zap.Logger
	// Encryption is how MSE/PE is used (see mse.go); the zero value
	// is EncryptPrefer.
	Encryption Encryption

	// noFast leaves the Fast extension (BEP 6) bit out of our
	// handshake, so that tests can compare with the plain protocol.
	noFast bool

	// metaRetryAfter, if set, replaces the metadata fetch's retry time
	// (see metadata.Fetch.SetRetryAfter), so that tests need not wait
	// for it.
	metaRetryAfter time.Duration
	// hsTimeout, if set, replaces handshakeTimeout for the torrent's own
	// connections, in and out, so that tests of peers that never finish
	// their handshake need not wait out the default.
	hsTimeout time.Duration
	// pexEvery, if set, replaces pexInterval; classify, if set, replaces
	// classOf where sources and peers are judged, so that a test on
	// loopback can have public and private peers.
	pexEvery time.Duration
	classify func(netip.Addr) addrClass
	// lookEvery, if set, replaces lookupEvery, so that a test of what a
	// later lookup finds need not wait 20 s for it.
	lookEvery time.Duration
	// fixedPipeline, if set, keeps every peer's pipeline at this many
	// blocks (within its reqq) instead of sizing it (see pipeline.go):
	// what the sizing is measured against.
	fixedPipeline int
	// deepWithoutFast lets pipelines grow past safePipeline with peers
	// that need not answer a cancel (see pipeline.go): for tests of the
	// sizing against peers without the Fast extension.
	deepWithoutFast bool
	// tickEvery, if set, replaces tickEvery and idleTickEvery, so that a
	// test can show that something happens without waiting for a tick.
	tickEvery time.Duration
	// resumeEvery, if set, replaces resumeEvery.
	resumeEvery time.Duration
}

// ErrBadMetadata is wrapped when the fetched info dictionary is unusable
// (unsafe paths, invalid layout); the download cannot go on.
var ErrBadMetadata = errors.New("peer: unusable torrent metadata")

// Torrent downloads and serves one torrent. One goroutine, the loop, owns
// all of its state; connections and workers report to it as events.
type Torrent struct {
	cfg Config
	log *zap.Logger
	// lns are all the listeners (Config.Listener, then Listeners); ours
	// the specific IPs they are bound to, at most one per family.
	lns []net.Listener
	// lnsClosed: Run has closed lns (Run's goroutine only).
	lnsClosed bool
	ours      []netip.Addr
	// noUTP: addresses dialled over TCP alone (see connect).
	noUTP  noUTP
	ih     metadata.InfoHash
	peerID [20]byte
	events chan event
	// tickPeriod is the loop's tick now (see pace).
	tickPeriod time.Duration
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	metaCh, doneCh chan struct{}
	failMu         sync.Mutex
	failErr        error

	// Owned by the loop.
	info     *metadata.Info
	st       *storage.Storage
	fetch    *metadata.Fetch
	peers    map[*conn]*peerState
	known    map[netip.AddrPort]*candidate
	banned   map[netip.Addr]bool
	dialing  int
	pk       *picker
	freeBufs [][]byte // buffers of verified pieces, for the next ones
	writing  int      // pieces being hashed and written (see maxWriting)
	// While the messages of one batch are handled (inBatch), batching
	// collects the peers whose pipelines are to be filled at its end.
	inBatch  bool
	batching map[*peerState]bool
	rng      *mrand.Rand
	start    time.Time
	lastSave time.Time
	saving   bool // a periodic save of the resume record is under way
	// saveFailed: a periodic save failed, and the loop may not have
	// heard (see saveResume).
	saveFailed atomic.Bool
	dirty      bool // pieces completed since the last resume save
	nextLook   time.Time
	looking    bool
	announced  time.Time
	lookFails  int
	choker     chokeState
	stats      counters
	// downBy is the piece payload departed peers delivered, by link (see
	// Stats.DownloadedBy).
	downBy map[string]int64
	// Smart ban (smartban.go): block digests of failed pieces, by piece.
	suspects      map[int][]suspectBlock
	suspectBlocks int

	// Candidates and connections (see candidates.go): the sources of
	// the candidates in known, our dials in flight by address, the peers
	// closed by turnover (refused until the time given), and the
	// incoming handshakes in progress, which acceptLoop's goroutines
	// share.
	sources map[netip.Prefix]*source
	dialsTo map[netip.Prefix]int
	// selfIn counts the connections to our listener that carried our
	// peer ID and that no dial of ours has claimed yet (at most
	// maxSelfAddrs): a dial that gets our peer ID back reached us only
	// if one came in. A peer that echoes our ID makes none, and is not
	// remembered as ourselves (see selfDialled).
	selfIn       atomic.Int32
	turnedOut    map[netip.Prefix]time.Time
	lastTurnover time.Time
	turn         turnoverTimes
	hs           handshakes
	hsUTP        handshakes       // incoming uTP's own (see handshakesOf)
	plain        plainOnly        // addresses that refused MSE (see mse.go)
	self         []netip.AddrPort // where dials reached ourselves, oldest first (see maxSelfAddrs)
	pexEvery     time.Duration
	lookEvery    time.Duration
	classify     func(netip.Addr) addrClass

	// Shared by every connection; empty when unlimited. Immutable.
	upLimit, downLimit limits
	// inbound bounds the bytes read from peers but not yet handled.
	inbound *byteBudget

	// ann announces to the trackers, nil without any; progress is what
	// it reports, kept by the loop.
	ann      *tracker.Announcer
	progress atomic.Pointer[tracker.Progress]
	// annPort is the port we are reachable on from outside, set by
	// SetAnnouncePort; 0: the first listener's.
	annPort uint16
}

type counters struct {
	downloaded, uploaded, wasted int64
	metadataAt, completeAt       time.Duration
	hashFails                    int
	verified                     int // pieces downloaded that passed their hash
	// ut_pex messages sent and taken in; contacts that became candidates,
	// contacts ignored; messages ignored as too soon, malformed.
	pexSent, pexReceived, pexAdded, pexIgnored, pexEarly, pexBad int
	droppedAddrFields                                            int
	rejected, timedOut                                           int // our requests rejected (BEP 6), and given up
	fastSent, fastReceived                                       FastCounts
	stalls                                                       int
	// sourceReplaced: candidates a full source's newer ones replaced;
	// sourceFull: candidates refused, their source full of connected ones.
	sourceReplaced, sourceFull int
	// tcpConns and utpConns count the connections that joined the peers.
	tcpConns, utpConns int
	// dataConns counts the departed peers that delivered piece payload.
	dataConns int
}

// New prepares a torrent; Run starts it.
func New(cfg Config) (*Torrent, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxDials <= 0 {
		cfg.MaxDials = DefaultMaxDials
	}
	if cfg.BufferBudget <= 0 {
		cfg.BufferBudget = DefaultBufferBudget
	}
	if cfg.UploadSlots <= 0 {
		cfg.UploadSlots = DefaultUploadSlots
	}
	if cfg.Encryption < EncryptPrefer || cfg.Encryption > EncryptOff {
		return nil, fmt.Errorf("peer: unknown %v", cfg.Encryption)
	}
	if cfg.MaxUploadRate < 0 || cfg.MaxDownloadRate < 0 {
		return nil, errors.New("peer: negative rate limit")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	var lns []net.Listener
	if cfg.Listener != nil {
		lns = append(lns, cfg.Listener)
	}
	for _, ln := range cfg.Listeners {
		if ln != nil {
			lns = append(lns, ln)
		}
	}
	ours := listenIPs(lns)
	if cfg.Dial == nil {
		cfg.Dial = func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			return dialFrom(ctx, a, ours)
		}
	}
	if cfg.Info != nil && cfg.Info.InfoHash != cfg.InfoHash {
		return nil, fmt.Errorf("peer: info hashes to %v, not %v", cfg.Info.InfoHash, cfg.InfoHash)
	}
	t := &Torrent{
		cfg: cfg, log: cfg.Logger, ih: cfg.InfoHash, lns: lns, ours: ours,
		events:    make(chan event, 1024),
		metaCh:    make(chan struct{}),
		doneCh:    make(chan struct{}),
		peers:     make(map[*conn]*peerState),
		known:     make(map[netip.AddrPort]*candidate),
		sources:   make(map[netip.Prefix]*source),
		dialsTo:   make(map[netip.Prefix]int),
		turnedOut: make(map[netip.Prefix]time.Time),
		turn:      defaultTurnover,
		pexEvery:  cmp.Or(cfg.pexEvery, pexInterval),
		lookEvery: cmp.Or(cfg.lookEvery, lookupEvery),
		classify:  cfg.classify,
		banned:    make(map[netip.Addr]bool),
		batching:  make(map[*peerState]bool),
		rng:       mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64())),
		upLimit:   limits{own: newLimiter(cfg.MaxUploadRate), shared: cfg.UploadLimit},
		downLimit: limits{own: newLimiter(cfg.MaxDownloadRate), shared: cfg.DownloadLimit},
	}
	if t.classify == nil {
		t.classify = classOf
	}
	// The context exists from New on, so Stats and post work before Run
	// starts; Run ties it to the caller's.
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.inbound = newByteBudget(maxInboundBytes, t.ctx.Done())
	copy(t.peerID[:], "-ND0001-")
	_, _ = rand.Read(t.peerID[8:])
	if len(cfg.Trackers) > 0 {
		var port uint16
		if len(lns) > 0 {
			port = addrOf(lns[0].Addr()).Port()
		}
		t.ann = tracker.NewAnnouncer(tracker.Config{
			Tiers: cfg.Trackers, InfoHash: cfg.InfoHash, PeerID: t.peerID, Port: port,
			Progress: func() tracker.Progress { return *t.progress.Load() },
			Client:   tracker.NewClient(userAgent, ours...), Logger: cfg.Logger,
		})
		t.progress.Store(&tracker.Progress{Left: unknownLeft})
	}
	return t, nil
}

// Metadata is closed once the info dictionary is known.
func (t *Torrent) Metadata() <-chan struct{} { return t.metaCh }

// Done is closed once every piece is verified on disk.
func (t *Torrent) Done() <-chan struct{} { return t.doneCh }

// Err is the error that stopped the torrent, if any.
func (t *Torrent) Err() error {
	t.failMu.Lock()
	defer t.failMu.Unlock()
	return t.failErr
}

// Run runs the torrent until ctx is done or it fails (disk error, unusable
// metadata). On return every goroutine it started has stopped, the resume
// file is saved and the files are closed.
func (t *Torrent) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, t.cancel)
	defer stop()
	defer t.cancel()
	// On every return, the early ones too: a listener left open keeps its
	// port, or its info-hash registered on a Mux, which refuses the next
	// session's listener.
	defer t.closeListeners()
	t.start = time.Now()
	if t.cfg.Info != nil {
		if err := t.setInfo(t.cfg.Info); err != nil {
			if t.ctx.Err() != nil && t.Err() == nil {
				return nil // stopped while checking the files: not a failure
			}
			return err
		}
	} else {
		t.fetch = metadata.NewFetch(t.ih)
		t.fetch.SetRetryAfter(t.cfg.metaRetryAfter)
	}
	for _, a := range t.cfg.Peers {
		t.addCandidate(a, netip.AddrPort{}, t.start)
	}
	if t.ann != nil {
		t.saveProgress()
		t.runTrackers()
	}
	for _, ln := range t.lns {
		t.wg.Add(1)
		go t.acceptLoop(ln)
	}
	t.loop()
	t.closeListeners()
	for c := range t.peers {
		c.close(context.Canceled)
	}
	t.wg.Wait()
	var err error
	if t.st != nil {
		if t.dirty || t.saveFailed.Load() {
			if serr := t.st.SaveResume(); serr != nil {
				t.log.Warn("saving resume data", zap.Error(serr))
			}
		}
		err = t.st.Close()
	}
	if ferr := t.Err(); ferr != nil {
		return ferr
	}
	return err
}

// closeListeners closes the listeners, once.
func (t *Torrent) closeListeners() {
	if t.lnsClosed {
		return
	}
	t.lnsClosed = true
	for _, ln := range t.lns {
		ln.Close()
	}
}

// fail stops the torrent with err.
func (t *Torrent) fail(err error) {
	t.failMu.Lock()
	if t.failErr == nil {
		t.failErr = err
	}
	t.failMu.Unlock()
	t.cancel()
}

// Events the loop handles.
type event interface{ isEvent() }

type (
	connectedEvent struct{ c *conn }
	messageEvent   struct {
		c  *conn
		ms []inMsg
	}
	closedEvent struct{ c *conn }
	addrsEvent  struct {
		addrs   []netip.AddrPort
		from    netip.AddrPort // the DHT node or tracker that named them
		tracker bool           // from is a tracker
	}
	dialDoneEvent struct {
		addr netip.AddrPort
		err  error
	}
	pieceDoneEvent struct {
		piece int
		ok    bool
		err   error             // writing it failed
		sums  [][sha1.Size]byte // block digests, when smart ban wants them
	}
	lookupDoneEvent struct {
		port      int // the port announced, or that would have been
		announced bool
		found     int
		err       error
	}
	statsEvent struct{ reply chan Stats }
)

func (connectedEvent) isEvent()  {}
func (messageEvent) isEvent()    {}
func (closedEvent) isEvent()     {}
func (addrsEvent) isEvent()      {}
func (dialDoneEvent) isEvent()   {}
func (pieceDoneEvent) isEvent()  {}
func (lookupDoneEvent) isEvent() {}
func (statsEvent) isEvent()      {}
func (loopFunc) isEvent()        {}

// loopFunc runs on the loop: how tests look at its state.
type loopFunc func(*Torrent)

// post hands ev to the loop; false once the torrent is stopping.
func (t *Torrent) post(ev event) bool {
	if ce, ok := ev.(connectedEvent); ok {
		// startConn posts this before it starts the connection's reader
		// and writer, so they see the limits without synchronisation.
		ce.c.upLimit, ce.c.downLimit = t.upLimit, t.downLimit
		ce.c.inbound = t.inbound
	}
	select {
	case t.events <- ev:
		return true
	case <-t.ctx.Done():
		return false
	}
}

func (t *Torrent) loop() {
	t.tickPeriod = cmp.Or(t.cfg.tickEvery, tickEvery)
	tick := time.NewTicker(t.tickPeriod)
	defer tick.Stop()
	t.tick(time.Now())
	for {
		select {
		case ev := <-t.events:
			t.handle(ev, time.Now())
		case now := <-tick.C:
			t.tick(now)
		case <-t.ctx.Done():
			return
		}
		if p := t.pace(); p != t.tickPeriod {
			t.tickPeriod = p
			tick.Reset(p)
		}
	}
}

// pace is the tick period the torrent's state calls for: idleTickEvery
// while it wants nothing and has no peer, connected or being dialed.
func (t *Torrent) pace() time.Duration {
	if t.cfg.tickEvery > 0 {
		return t.cfg.tickEvery
	}
	if len(t.peers) == 0 && t.dialing == 0 && t.wantNothing() {
		return idleTickEvery
	}
	return tickEvery
}

func (t *Torrent) handle(ev event, now time.Time) {
	switch ev := ev.(type) {
	case connectedEvent:
		t.connected(ev.c, now)
	case messageEvent:
		ps := t.peers[ev.c]
		t.inBatch = true
		var cost int64
		for i, im := range ev.ms {
			if ps != nil && t.peers[ev.c] == ps {
				if err := t.onMessage(ps, im.m, now); err != nil {
					if errors.Is(err, errBothSeeds) {
						t.seedListenPort(ps, ev.ms[i+1:])
					}
					t.log.Info("dropping peer", zap.Stringer("peer", ev.c.addr), zap.Error(err))
					t.drop(ev.c, err)
					ps = nil
				}
			}
			im.chunk.release()
			cost += im.cost
		}
		t.inbound.release(cost)
		t.inBatch = false
		for p := range t.batching {
			delete(t.batching, p)
			if t.peers[p.c] == p {
				t.fillRequests(p, now)
			}
		}
	case closedEvent:
		t.disconnected(ev.c)
	case addrsEvent:
		for _, a := range ev.addrs {
			switch {
			case ev.tracker:
				t.addCandidateFrom(a, ev.from, fromTracker, false, now)
			case ev.from.IsValid() && t.private():
				// A lookup started before the metadata showed the
				// torrent private.
			default:
				t.addCandidate(a, ev.from, now)
			}
		}
		t.fillDials(now) // a peer found is worth dialing now, not at the next tick
	case dialDoneEvent:
		t.dialing--
		t.dialEnded(ev.addr)
		// A dial that handshook was already judged by connected(),
		// which took the connection or refused it.
		switch {
		case errors.Is(ev.err, errSelf) && t.selfIn.Load() > 0:
			t.selfIn.Add(-1)
			t.selfDialled(ev.addr)
		case ev.err != nil:
			t.dialFailed(ev.addr, now)
		}
		// The slot is free now: a refused dial takes a millisecond on a
		// LAN, and waiting for the tick would dial 16 candidates per tick
		// while a source's junk is worked through.
		t.fillDials(now)
	case pieceDoneEvent:
		t.pieceDone(ev, now)
	case lookupDoneEvent:
		t.looking = false
		if ev.announced {
			t.announced = now
		}
		if ev.err != nil || ev.found == 0 {
			// Most often the DHT is still bootstrapping, or the seeders
			// have not announced yet: try again soon, backing off, rather
			// than after a full lookupEvery.
			t.lookFails++
			t.nextLook = now.Add(min(250*time.Millisecond<<min(t.lookFails, 7), t.lookEvery))
		} else {
			t.lookFails = 0
		}
		if ev.port != t.announcePort() {
			// The port changed during the lookup: announce the new one
			// now, not in announceEvery nor after a failed lookup's
			// backoff.
			t.announced, t.nextLook = time.Time{}, now
		}
	case statsEvent:
		ev.reply <- t.snapshot(now)
	case progressEvent:
		ev.reply <- t.progressNow(now)
	case loopFunc:
		ev(t)
	}
}

// saveResume saves the resume record off the loop: it fsyncs every file
// written since the last save, which on a loopback fetch held the loop
// (and so every peer's requests) for 15 ms at the first tick, and takes
// longer on a slow disk. One save runs at a time. Storage takes the
// record's bitfield under the lock it saves with (see SaveResume), so a
// later save, this one or checkComplete's or the final one, never loses
// to an earlier one; a failed save leaves the torrent dirty for the next.
func (t *Torrent) saveResume(now time.Time) {
	t.lastSave, t.dirty, t.saving = now, false, true
	st := t.st
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := st.SaveResume()
		if err != nil {
			t.saveFailed.Store(true) // for Run's last save, if the loop has ended
		}
		t.post(loopFunc(func(t *Torrent) {
			t.saving = false
			if err != nil {
				t.dirty = true
				t.saveFailed.Store(false)
				t.log.Warn("saving resume data", zap.Error(err))
			}
		}))
	}()
}

func (t *Torrent) tick(now time.Time) {
	t.turnover(now)
	t.fillDials(now)
	if t.fetch != nil {
		for _, ps := range t.peers {
			t.requestMetadata(ps, now)
		}
	}
	if t.info != nil {
		t.expireRequests(now)
		for _, ps := range t.peers {
			t.fillRequests(ps, now)
			t.serveMetadata(ps)
		}
		t.choke(now)
		t.choker.early = 0
	}
	t.discover(now)
	t.sendPex(now)
	if t.ann != nil {
		t.saveProgress()
	}
	if t.st != nil && t.dirty && !t.saving && now.Sub(t.lastSave) >= cmp.Or(t.cfg.resumeEvery, resumeEvery) {
		t.saveResume(now)
	}
}

// discover asks the DHT for peers: an announce (which is also a lookup)
// at start and every 15 minutes, and plain lookups in between while we
// still need data and have few peers.
func (t *Torrent) discover(now time.Time) {
	if t.cfg.DHT == nil || t.looking || t.private() {
		return
	}
	announce := now.Sub(t.announced) >= announceEvery
	if now.Before(t.nextLook) {
		return
	}
	needPeers := !t.wantNothing() && len(t.peers) < 8
	if !announce && !needPeers {
		return
	}
	t.looking = true
	t.nextLook = now.Add(t.lookEvery)
	port := t.announcePort()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ctx, cancel := context.WithTimeout(t.ctx, time.Minute)
		defer cancel()
		found := make(chan dht.FoundPeer, 64)
		fwd := make(chan struct{})
		count := 0
		go func() {
			defer close(fwd)
			for f := range found {
				count++
				t.post(addrsEvent{addrs: []netip.AddrPort{f.Addr}, from: f.From})
			}
		}()
		var err error
		if announce && port != 0 {
			_, err = t.cfg.DHT.AnnounceFrom(ctx, routing.ID(t.ih), port, found)
		} else {
			_, err = t.cfg.DHT.GetPeersFrom(ctx, routing.ID(t.ih), found)
		}
		close(found)
		<-fwd
		if err != nil && ctx.Err() == nil {
			t.log.Debug("dht lookup", zap.Error(err))
		}
		t.post(lookupDoneEvent{port: port, announced: announce && err == nil, found: count, err: err})
	}()
}

// runTrackers starts the announcer; its peers join the candidates like
// the DHT's, the tracker that named them as their source, in one event
// per answer. It ends after the torrent's context, once the trackers are
// told we stopped (tracker.StopTimeout at most).
func (t *Torrent) runTrackers() {
	found := make(chan tracker.Found, 8)
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		defer close(found)
		t.ann.Run(t.ctx, found)
		t.ann.Client().CloseIdle()
	}()
	go func() {
		defer t.wg.Done()
		for f := range found {
			t.postFound(f)
		}
	}()
}

// postFound hands the loop a peer a tracker named. One without the
// tracker's address would be taken as the user's: the most trusted, and
// bounded by no source.
func (t *Torrent) postFound(f tracker.Found) {
	if f.From.IsValid() {
		t.post(addrsEvent{addrs: f.Peers, from: f.From, tracker: true})
	}
}

// saveProgress records what the next announce reports.
func (t *Torrent) saveProgress() {
	p := tracker.Progress{Uploaded: t.stats.uploaded, Downloaded: t.stats.downloaded, Left: unknownLeft,
		NeedPeers: !t.wantNothing() && len(t.peers) < 8}
	if t.info != nil && t.st != nil {
		p.Left = t.info.Length - t.st.BytesComplete()
	}
	t.progress.Store(&p)
}

func (t *Torrent) complete() bool {
	return t.info != nil && t.st != nil && t.st.NumComplete() == t.info.NumPieces()
}

// wantNothing reports whether we fetch nothing more: every piece is
// verified, or we only serve (NoDownload, perhaps a partial seed). Then
// seeds are of no use to us, and we look for peers only to announce.
// Before the metadata we want it, even to only serve: a seed has it.
func (t *Torrent) wantNothing() bool {
	return t.info != nil && (t.cfg.NoDownload || t.complete())
}
