package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"node/cmd/node/api"
	"node/cmd/node/metrics"
	"node/dht"
	"node/magnet"
	"node/metadata"
	"node/peer"
	"node/peer/tracker"
	"node/storage"
)

// Bounds and periods.
const (
	// MaxTorrents bounds the torrents a daemon holds: each costs memory
	// even queued, and an API client, buggy or not, could add without end.
	MaxTorrents = 2000
	// SampleEvery is how often the running torrents' figures are read for
	// List, the rates, the seed ratio and the queue.
	SampleEvery = time.Second
	// IdleSampleEvery is how often they are read of a seed that had no
	// peer at its last reading: a daemon seeding hundreds of torrents
	// nobody asks for does not wake each every second, and a peer that
	// comes shows within this time.
	IdleSampleEvery = 5 * time.Second
	// SaveEvery is how often the torrents file is rewritten for its
	// byte counts alone (state changes are written at once): at most this
	// much of the counts is lost to a kill.
	SaveEvery = 30 * time.Second
	// RateWindow is how many samples a rate spans.
	RateWindow = 5
	// sampleTimeout bounds the wait for one torrent's figures.
	sampleTimeout = 500 * time.Millisecond
	// stopWarnAfter is how long a torrent may take to stop (save its
	// resume data, close its files) on Pause and Remove before the daemon
	// logs that it is slow. It waits on regardless: a session is never
	// left running behind a torrent shown paused, nor its files deleted
	// under it; a check of existing data stops between two pieces.
	stopWarnAfter = 30 * time.Second
)

// Defaults for Config fields left zero.
const (
	DefaultMaxActiveDownloads = 5
	DefaultMaxActiveSeeds     = 100
	// DefaultStalledAfter is how long a download may go without payload
	// (or, a magnet link, without its metadata) before it stops holding
	// its queue slot, as transmission-daemon's queue-stalled-minutes.
	DefaultStalledAfter = 10 * time.Minute
)

// Config configures a Daemon.
type Config struct {
	// StateDir holds the torrents file and the saved .torrent files; the
	// DHT node keeps its own state there too (and holds its lock). Empty:
	// nothing survives the process.
	StateDir string
	// Dir is the download directory of torrents added without one;
	// absolute.
	Dir string
	// DHT is the node every torrent finds peers through; the daemon does
	// not close it.
	DHT *dht.Node
	// Listen gives a torrent the listener its incoming peers arrive on;
	// the torrent closes it, so each session gets a new one. Nil: Mux's,
	// else no incoming peers.
	Listen func(ih metadata.InfoHash) (net.Listener, error)
	// Mux, if set, takes every torrent's incoming peers on one port (its
	// virtual listeners serve when Listen is nil), and its counts go into
	// the metrics. The daemon does not close it.
	Mux *peer.Mux
	// Dial and UTPDial are peer.Config's.
	Dial, UTPDial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	Encryption    peer.Encryption
	// Trackers lets a torrent announce to the trackers its magnet link or
	// .torrent names; without it only the DHT (and peers) find peers.
	Trackers bool
	// MaxActiveDownloads and MaxActiveSeeds bound the torrents running
	// at once of each kind; the others wait queued, first added first.
	MaxActiveDownloads, MaxActiveSeeds int
	// StalledAfter: a running download that has received no payload, nor
	// its metadata, for this long is stalled. It goes on running, shown
	// as before, but no longer counts against MaxActiveDownloads, so the
	// next queued one starts; it counts again once data comes (and the
	// download added last goes back to the queue if that is one too
	// many). A dead magnet link thus holds no slot for ever. Zero:
	// DefaultStalledAfter.
	StalledAfter time.Duration
	// SeedRatio is when seeding stops (uploaded/length), for torrents
	// added without their own; 0: never.
	SeedRatio float64
	// MaxUploadRate and MaxDownloadRate are bytes per second of piece
	// payload (0: unlimited) over all the torrents together: one bucket
	// each, shared by every running torrent.
	MaxUploadRate, MaxDownloadRate int64
	Logger                         *zap.Logger
}

// Daemon runs many torrents on one DHT node and keeps them across
// restarts. It implements api.Backend.
type Daemon struct {
	cfg  Config
	log  *zap.Logger
	dht  *tracedDHT
	kick chan struct{}
	// up and down are the global rate limits every torrent shares.
	up, down *peer.RateLimit

	// saveMu serializes writes of the torrents file: each writes the
	// records as they are once it holds it, so the last write is the
	// latest state.
	saveMu sync.Mutex

	mu       sync.Mutex
	torrents map[metadata.InfoHash]*entry
	runCtx   context.Context // nil until Run starts
	closed   bool
	wg       sync.WaitGroup // torrents' Run goroutines
	totals   metrics.DaemonStats
	lastSave time.Time
	dirty    bool
	// annPort is the external port a gateway maps to ours (0: none), for
	// the torrents to announce (see SetAnnouncePort).
	annPort uint16
	// removingHook, set by tests, runs in Remove after the session stopped
	// and before the files go.
	removingHook func(metadata.InfoHash)
}

var _ api.Backend = (*Daemon)(nil)

// entry is one torrent, guarded by Daemon.mu.
type entry struct {
	ih       metadata.InfoHash
	rec      record
	info     *metadata.Info
	trackers [][]string
	peers    []netip.AddrPort
	run      *running
	err      string
	// infoSaved: the .torrent is in the state directory.
	infoSaved bool
	// removing: Remove is under way. The entry stays in the map, unseen
	// by everything but Add, until Remove is done with the torrent's
	// files, so that an Add of the same info-hash meanwhile is refused
	// rather than have its .torrent and data deleted under it.
	removing bool
	// From the latest sample of the running session.
	sess    peer.Stats
	samples []sample
	// prog is the latest progress read (Get, and a session's stop), kept
	// for the detail view of a stopped torrent.
	prog *progressSnap
	// progressAt is when the running session last made progress: its
	// start, payload received, its metadata, a check of its files.
	progressAt time.Time
}

// running is one session of a torrent.
type running struct {
	t        *peer.Torrent
	cancel   context.CancelFunc
	done     chan struct{}
	stopping bool
}

type sample struct {
	at       time.Time
	down, up int64
}

// New prepares a daemon and loads the torrents of cfg.StateDir; Run
// starts them.
func New(cfg Config) (*Daemon, error) {
	if cfg.DHT == nil {
		return nil, errors.New("daemon: no DHT node")
	}
	if !filepath.IsAbs(cfg.Dir) {
		return nil, fmt.Errorf("daemon: download directory %q is not absolute", cfg.Dir)
	}
	cfg.Dir = filepath.Clean(cfg.Dir)
	if cfg.MaxActiveDownloads <= 0 {
		cfg.MaxActiveDownloads = DefaultMaxActiveDownloads
	}
	if cfg.MaxActiveSeeds <= 0 {
		cfg.MaxActiveSeeds = DefaultMaxActiveSeeds
	}
	if cfg.StalledAfter <= 0 {
		cfg.StalledAfter = DefaultStalledAfter
	}
	if cfg.SeedRatio < 0 || math.IsNaN(cfg.SeedRatio) || math.IsInf(cfg.SeedRatio, 0) {
		return nil, fmt.Errorf("daemon: bad seed ratio %v", cfg.SeedRatio)
	}
	if cfg.MaxUploadRate < 0 || cfg.MaxDownloadRate < 0 {
		return nil, errors.New("daemon: negative rate limit")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	d := &Daemon{
		cfg: cfg, log: cfg.Logger, dht: &tracedDHT{DHT: cfg.DHT},
		kick:     make(chan struct{}, 1),
		torrents: make(map[metadata.InfoHash]*entry),
		up:       peer.NewRateLimit(cfg.MaxUploadRate),
		down:     peer.NewRateLimit(cfg.MaxDownloadRate),
	}
	if cfg.StateDir != "" {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, torrentsDir), 0o700); err != nil {
			return nil, err
		}
		d.removeTemps()
		if err := d.load(); err != nil {
			return nil, err
		}
		// The node saves its table every few minutes; a kill before the
		// first save would give the next run another ID.
		if err := cfg.DHT.Save(); err != nil {
			d.log.Warn("saving the DHT state", zap.Error(err))
		}
	}
	return d, nil
}

// removeTemps deletes the temporary files of WriteFileAtomic that a
// crash left behind: the torrents file's and the .torrent files'. The
// DHT node holds the state directory's lock, so no other daemon is
// writing them.
func (d *Daemon) removeTemps() {
	d.removeMatching(d.cfg.StateDir, func(n string) bool {
		return strings.HasPrefix(n, "."+torrentsFile+".")
	})
	d.removeMatching(filepath.Join(d.cfg.StateDir, torrentsDir), func(n string) bool {
		return strings.HasPrefix(n, ".") && strings.Contains(n, ".torrent.")
	})
}

// removeMatching deletes the regular files of dir whose names match.
func (d *Daemon) removeMatching(dir string, match func(name string) bool) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if !de.Type().IsRegular() || !match(de.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
			d.log.Warn("removing a leftover temporary file", zap.Error(err))
		}
	}
}

// load reads the torrents file and each torrent's saved .torrent.
func (d *Daemon) load() error {
	path := filepath.Join(d.cfg.StateDir, torrentsFile)
	b, err := readBounded(path, MaxStateBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	recs, err := decodeState(b)
	if err != nil {
		return fmt.Errorf("daemon: %s: %w", path, err)
	}
	for _, r := range recs {
		e := &entry{rec: r}
		ihb, _ := hex.DecodeString(r.InfoHash)
		copy(e.ih[:], ihb)
		if r.Magnet != "" {
			l, err := magnet.Parse(r.Magnet)
			if err != nil || !l.HasV1 || metadata.InfoHash(l.InfoHash) != e.ih {
				d.log.Warn("dropping a saved torrent whose magnet link does not parse", zap.String("info_hash", r.InfoHash), zap.Error(err))
				continue
			}
			e.trackers, e.peers = magnetTrackers(l), magnetPeers(l)
		} else {
			e.trackers = filterTrackers(r.Trackers)
		}
		if err := d.readInfo(e); err != nil && r.Magnet == "" {
			// Kept, and saved again: the file may be readable after a
			// fix (permissions, a disk back), and Resume tries again.
			e.err = err.Error()
		}
		if e.info == nil && e.err == "" && r.Magnet == "" {
			d.log.Warn("dropping a saved torrent whose .torrent is lost", zap.String("info_hash", r.InfoHash))
			continue
		}
		d.torrents[e.ih] = e
	}
	return nil
}

// readInfo reads e's saved .torrent. A file that is missing, does not
// parse or is of another torrent leaves e.info nil without an error: the
// torrent is lost, unless a magnet link fetches it again. Any other
// error (permissions, I/O, no descriptors) is returned: the file may be
// fine once that is.
func (d *Daemon) readInfo(e *entry) error {
	tb, err := readBounded(d.torrentPath(e.ih), MaxTorrentFileBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		d.log.Warn("cannot read a saved .torrent", zap.String("info_hash", e.rec.InfoHash), zap.Error(err))
		return fmt.Errorf("reading the saved .torrent: %w", err)
	}
	mi, err := metadata.ParseMetaInfo(tb)
	if err != nil || mi.Info.InfoHash != e.ih {
		d.log.Warn("ignoring a saved .torrent that does not parse or match", zap.String("info_hash", e.rec.InfoHash), zap.Error(err))
		return nil
	}
	e.info, e.infoSaved = mi.Info, true
	return nil
}

func (d *Daemon) torrentPath(ih metadata.InfoHash) string {
	return filepath.Join(d.cfg.StateDir, torrentsDir, hex.EncodeToString(ih[:])+".torrent")
}

// save writes the torrents file (nothing without a state directory).
func (d *Daemon) save() error {
	if d.cfg.StateDir == "" {
		return nil
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	sf := stateFile{Version: stateVersion, Torrents: make([]record, 0, len(d.torrents))}
	for _, e := range d.torrents {
		if e.removing {
			continue
		}
		r := e.rec
		r.Uploaded += e.sess.Uploaded
		r.Downloaded += e.sess.Downloaded
		sf.Torrents = append(sf.Torrents, r)
	}
	d.dirty, d.lastSave = false, time.Now()
	d.mu.Unlock()
	slices.SortFunc(sf.Torrents, func(a, b record) int {
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		return strings.Compare(a.InfoHash, b.InfoHash)
	})
	b, err := jsonMarshal(sf)
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(d.cfg.StateDir, torrentsFile), b, 0o600); err != nil {
		d.log.Warn("saving the torrents file", zap.Error(err))
		return err
	}
	return nil
}

// saveInfo writes info as <infohash>.torrent in the state directory.
func (d *Daemon) saveInfo(info *metadata.Info, trackers [][]string) error {
	if d.cfg.StateDir == "" {
		return nil
	}
	mi := &metadata.MetaInfo{Info: info, CreatedBy: peer.ClientVersion, AnnounceList: trackers}
	b, err := mi.Marshal()
	if err != nil {
		return err
	}
	return WriteFileAtomic(d.torrentPath(info.InfoHash), b, 0o600)
}

// Run starts the torrents and looks after them (figures, seed ratios,
// the queue, saving) until ctx is done; then it stops them, as Close.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("daemon: closed")
	}
	if d.runCtx != nil {
		d.mu.Unlock()
		return errors.New("daemon: already running")
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.runCtx = runCtx
	d.scheduleLocked()
	d.mu.Unlock()
	tick := time.NewTicker(SampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.Close()
			return nil
		case <-tick.C:
			d.sampleAll()
		case <-d.kick:
			d.mu.Lock()
			d.scheduleLocked()
			d.mu.Unlock()
		}
		d.mu.Lock()
		saveNow := d.dirty || time.Since(d.lastSave) >= SaveEvery
		d.mu.Unlock()
		if saveNow {
			_ = d.save()
		}
	}
}

// Close stops every torrent (each saves its resume data) and writes the
// torrents file. The DHT node is the caller's.
func (d *Daemon) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		d.wg.Wait()
		return
	}
	d.closed = true
	type run struct {
		e *entry
		r *running
	}
	var runs []run
	for _, e := range d.torrents {
		if e.run != nil {
			runs = append(runs, run{e, e.run})
		}
	}
	d.mu.Unlock()
	// Every session's last figures at once, then every session told to
	// stop, then all waited for together: as long as the slowest, not
	// the sum.
	var wg sync.WaitGroup
	for _, x := range runs {
		wg.Go(func() { d.lastFigures(x.e, x.r) })
	}
	wg.Wait()
	d.mu.Lock()
	for _, x := range runs {
		if x.e.run == x.r {
			d.stopAsync(x.e)
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
	_ = d.save()
}

func (d *Daemon) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// scheduleLocked starts and stops torrents so that the active ones are
// within the limits: the running keep their slots, the queued take free
// ones first added first, as transmission-daemon's queue.
func (d *Daemon) scheduleLocked() {
	if d.runCtx == nil || d.closed {
		return
	}
	es := make([]*entry, 0, len(d.torrents))
	for _, e := range d.torrents {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int {
		if c := a.rec.AddedAt.Compare(b.rec.AddedAt); c != 0 {
			return c
		}
		return strings.Compare(a.rec.InfoHash, b.rec.InfoHash)
	})
	var downs, seeds int
	want := func(e *entry) bool { return !e.rec.Paused && !e.rec.Done && e.err == "" && !e.removing }
	slot := func(e *entry) *int {
		if e.rec.Complete {
			return &seeds
		}
		return &downs
	}
	limit := func(e *entry) int {
		if e.rec.Complete {
			return d.cfg.MaxActiveSeeds
		}
		return d.cfg.MaxActiveDownloads
	}
	now := time.Now()
	for _, e := range es {
		if e.run == nil || e.run.stopping {
			continue
		}
		if want(e) && d.stalled(e, now) {
			continue // runs on, outside the limit
		}
		if n := slot(e); want(e) && *n < limit(e) {
			*n++
		} else {
			d.stopAsync(e)
		}
	}
	for _, e := range es {
		if e.run != nil || !want(e) {
			continue
		}
		if n := slot(e); *n < limit(e) {
			if d.startLocked(e) {
				*n++
			}
		}
	}
}

// stalled reports whether e, a running download, has made no progress
// for StalledAfter.
func (d *Daemon) stalled(e *entry, now time.Time) bool {
	return !e.rec.Complete && now.Sub(e.progressAt) >= d.cfg.StalledAfter
}

// startLocked starts a session of e; false if it failed (e.err says why).
func (d *Daemon) startLocked(e *entry) bool {
	var ln net.Listener
	listen := d.cfg.Listen
	if listen == nil && d.cfg.Mux != nil {
		listen = d.cfg.Mux.Listener
	}
	if listen != nil {
		var err error
		if ln, err = listen(e.ih); err != nil {
			e.err = "listen: " + err.Error()
			d.log.Warn("no listener for a torrent", zap.String("info_hash", e.rec.InfoHash), zap.Error(err))
			return false
		}
	}
	pc := peer.Config{
		InfoHash: e.ih, Info: e.info, Dir: e.rec.Dir, Listener: ln, DHT: d.dht, Peers: e.peers,
		Dial: d.cfg.Dial, UTPDial: d.cfg.UTPDial, Encryption: d.cfg.Encryption,
		Logger:      d.log.With(zap.String("info_hash", e.rec.InfoHash)),
		UploadLimit: d.up, DownloadLimit: d.down,
	}
	if d.cfg.Trackers {
		pc.Trackers = e.trackers
	}
	t, err := peer.New(pc)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		e.err = err.Error()
		return false
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	r := &running{t: t, cancel: cancel, done: make(chan struct{})}
	e.run, e.sess, e.samples, e.progressAt = r, peer.Stats{}, nil, time.Now()
	if d.annPort != 0 && ln != nil {
		// Posted to the torrent's loop, which Run starts.
		go t.SetAnnouncePort(d.annPort)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(r.done)
		err := t.Run(ctx)
		d.mu.Lock()
		defer d.mu.Unlock()
		d.fold(e)
		if e.info == nil {
			e.info = t.Info()
		}
		e.run = nil
		if err != nil && !errors.Is(err, context.Canceled) && !r.stopping {
			e.err = err.Error()
			d.log.Warn("torrent stopped", zap.String("info_hash", e.rec.InfoHash), zap.Error(err))
		}
		d.dirty = true
		d.wake()
	}()
	return true
}

// fold adds the session's counts to the record's totals.
func (d *Daemon) fold(e *entry) {
	e.rec.Downloaded += e.sess.Downloaded
	e.rec.Uploaded += e.sess.Uploaded
	e.sess = peer.Stats{}
	e.samples = nil
}

// stopAsync asks e's session to stop.
func (d *Daemon) stopAsync(e *entry) {
	if e.run != nil && !e.run.stopping {
		e.run.stopping = true
		e.run.cancel()
	}
}

// stop takes e's session's last figures, stops it and waits until it
// has stopped or ctx is done.
func (d *Daemon) stop(ctx context.Context, e *entry) error {
	d.mu.Lock()
	r := e.run
	d.mu.Unlock()
	if r == nil {
		return nil
	}
	d.lastFigures(e, r)
	d.mu.Lock()
	d.stopAsync(e)
	d.mu.Unlock()
	warn := time.NewTimer(stopWarnAfter)
	defer warn.Stop()
	for {
		select {
		case <-r.done:
			return nil
		case <-warn.C:
			d.log.Warn("a torrent is slow to stop; still waiting", zap.String("info_hash", e.rec.InfoHash))
		case <-ctx.Done():
			return fmt.Errorf("the torrent is still stopping: %w", ctx.Err())
		}
	}
}

// lastFigures reads the figures and progress of e's session r before it
// stops; none of a session still checking its files, whose loop
// answers nothing until the check is done.
func (d *Daemon) lastFigures(e *entry, r *running) {
	if !metadataKnown(r.t) {
		return
	}
	d.sampleOne(e, r)
	d.readProgress(e, r)
}

// metadataKnown reports whether t has its info and has checked its
// files: only then does its loop answer at once.
func metadataKnown(t *peer.Torrent) bool {
	select {
	case <-t.Metadata():
		return true
	default:
		return false
	}
}

// sampleAll reads every running torrent's figures.
func (d *Daemon) sampleAll() {
	d.mu.Lock()
	type job struct {
		e *entry
		r *running
	}
	var jobs []job
	now := time.Now()
	for _, e := range d.torrents {
		// One checking its files (info known, metadata not yet closed)
		// would only make the reading wait sampleTimeout.
		checking := e.run != nil && e.info != nil && !metadataKnown(e.run.t)
		if checking {
			e.progressAt = now // checking is progress
		}
		if e.run != nil && !e.run.stopping && !e.quietUntil(now) && !checking {
			jobs = append(jobs, job{e, e.run})
		}
	}
	d.mu.Unlock()
	for _, j := range jobs {
		d.sampleOne(j.e, j.r)
	}
	d.mu.Lock()
	d.scheduleLocked()
	d.mu.Unlock()
}

// sampleOne reads the figures of e's session r and acts on them:
// metadata to save, completion, the seed ratio.
func (d *Daemon) sampleOne(e *entry, r *running) {
	ctx, cancel := context.WithTimeout(context.Background(), sampleTimeout)
	s, err := r.t.Stats(ctx)
	cancel()
	if err != nil {
		return
	}
	d.applySample(e, r, s, time.Now())
}

// applySample takes s, read of e's session r at now, unless it is no
// longer current.
func (d *Daemon) applySample(e *entry, r *running, s peer.Stats, now time.Time) {
	var saveInfo *metadata.Info
	var trackers [][]string
	d.mu.Lock()
	if e.run != r || olderThan(s, e.sess) {
		d.mu.Unlock()
		return
	}
	d.account(e, s)
	if s.Downloaded > e.sess.Downloaded || s.HaveInfo && !e.sess.HaveInfo {
		e.progressAt = now
	}
	e.sess = s
	e.addSample(sample{at: now, down: s.Downloaded, up: s.Uploaded})
	if e.info == nil {
		e.info = r.t.Info()
	}
	if e.info != nil && !e.infoSaved && !e.removing {
		e.infoSaved = true
		saveInfo, trackers = e.info, e.rec.Trackers
		if e.rec.Name == "" || e.rec.Name == e.rec.InfoHash {
			e.rec.Name = e.info.Name
		}
		d.dirty = true
	}
	// Both ways: data deleted behind our back makes a seed a download.
	if complete := s.Pieces > 0 && s.Have == s.Pieces; s.HaveInfo && complete != e.rec.Complete {
		e.rec.Complete = complete
		d.dirty = true
	}
	if e.rec.Complete && e.rec.SeedRatio > 0 && s.Length > 0 &&
		float64(e.rec.Uploaded+s.Uploaded)/float64(s.Length) >= e.rec.SeedRatio {
		e.rec.Done = true
		d.dirty = true
		d.stopAsync(e)
		d.log.Info("seed ratio reached", zap.String("info_hash", e.rec.InfoHash), zap.Float64("ratio", e.rec.SeedRatio))
	}
	d.mu.Unlock()
	if saveInfo != nil {
		if err := d.saveInfo(saveInfo, trackers); err != nil {
			d.log.Warn("saving the .torrent", zap.Error(err))
		}
	}
}

// olderThan reports whether s is an older reading of a session than
// cur, the one applied: a stop's reading and sampleAll's can cross, and
// applying the older last would count again what the newer had counted.
// Every count it compares only grows within a session.
func olderThan(s, cur peer.Stats) bool {
	return s.Downloaded < cur.Downloaded || s.Uploaded < cur.Uploaded ||
		s.Verified < cur.Verified || s.HashFails < cur.HashFails ||
		s.TCPConns < cur.TCPConns || s.UTPConns < cur.UTPConns
}

// quietUntil reports whether e, a seed without peers at its last
// sample, need not be sampled again yet at now (see IdleSampleEvery).
func (e *entry) quietUntil(now time.Time) bool {
	n := len(e.samples)
	return n > 0 && e.sess.HaveInfo && e.rec.Complete && e.sess.Peers == 0 &&
		now.Sub(e.samples[n-1].at) < IdleSampleEvery
}

// addSample keeps the latest RateWindow samples.
func (e *entry) addSample(x sample) {
	e.samples = append(e.samples, x)
	if len(e.samples) > RateWindow {
		e.samples = slices.Delete(e.samples, 0, len(e.samples)-RateWindow)
	}
}

// account adds the change since e's last sample to the daemon's totals.
func (d *Daemon) account(e *entry, s peer.Stats) {
	prev := e.sess // zero at a session's start
	pos := func(a, b int64) uint64 { return uint64(max(a-b, 0)) }
	d.totals.DownloadedBytes += pos(s.Downloaded, prev.Downloaded)
	d.totals.UploadedBytes += pos(s.Uploaded, prev.Uploaded)
	d.totals.PiecesVerified += pos(int64(s.Verified), int64(prev.Verified))
	d.totals.PiecesFailed += pos(int64(s.HashFails), int64(prev.HashFails))
	d.totals.Conns[0] += pos(int64(s.TCPConns), int64(prev.TCPConns))
	d.totals.Conns[1] += pos(int64(s.UTPConns), int64(prev.UTPConns))
}

// MetricsStats implements metrics.DaemonSource.
func (d *Daemon) MetricsStats() metrics.DaemonStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.totals
	s.Torrents = make(map[string]int)
	for _, e := range d.torrents {
		if e.removing {
			continue
		}
		s.Torrents[e.state()]++
		if e.run != nil {
			s.Peers[0] += e.sess.Peers - e.sess.UTPPeers
			s.Peers[1] += e.sess.UTPPeers
			s.BannedPeers += e.sess.Banned
		}
	}
	if d.cfg.Mux != nil {
		m := d.cfg.Mux.Stats()
		s.Accepted = uint64(m.Accepted)
		s.Incoming = [len(metrics.IncomingOutcomes)]uint64{
			uint64(m.Routed), uint64(m.OverBudget), uint64(m.Failed), uint64(m.Unknown), uint64(m.Dropped)}
	}
	return s
}

// state is e's api state.
func (e *entry) state() string {
	switch {
	case e.err != "":
		return api.StateError
	case e.rec.Paused:
		return api.StatePaused
	case e.rec.Done:
		return api.StateDone
	case e.run == nil || e.run.stopping:
		return api.StateQueued
	}
	select {
	case <-e.run.t.Metadata():
	default:
		if e.info == nil {
			return api.StateMetadata
		}
		return api.StateChecking
	}
	if e.rec.Complete {
		return api.StateSeeding
	}
	return api.StateDownloading
}

// view is e as List shows it.
func (e *entry) view() api.Torrent {
	t := api.Torrent{
		InfoHash: e.rec.InfoHash, Name: e.rec.Name, Dir: e.rec.Dir, State: e.state(), Error: e.err,
		AddedAt: e.rec.AddedAt, SeedRatio: e.rec.SeedRatio,
		Downloaded: e.rec.Downloaded + e.sess.Downloaded, Uploaded: e.rec.Uploaded + e.sess.Uploaded,
	}
	if t.Name == "" {
		t.Name = e.rec.InfoHash
	}
	if e.info != nil {
		t.Name, t.Length, t.Pieces = e.info.Name, e.info.Length, e.info.NumPieces()
		if e.rec.Complete && (e.run == nil || !e.sess.HaveInfo) {
			t.Done, t.Have = t.Length, t.Pieces
		}
	}
	if e.run != nil && e.sess.HaveInfo {
		t.Done, t.Have = e.sess.Done, e.sess.Have
		t.Peers, t.UTPPeers, t.Encrypted = e.sess.Peers, e.sess.UTPPeers, e.sess.EncryptedPeers
	}
	if n := len(e.samples); n >= 2 {
		a, b := e.samples[0], e.samples[n-1]
		if secs := b.at.Sub(a.at).Seconds(); secs > 0 {
			t.DownRate = float64(b.down-a.down) / secs
			t.UpRate = float64(b.up-a.up) / secs
		}
	}
	return t
}

// Add implements api.Backend.
func (d *Daemon) Add(ctx context.Context, req api.AddRequest) (api.Torrent, error) {
	if (req.Magnet == "") == (len(req.Torrent) == 0) {
		return api.Torrent{}, api.BadRequest{Err: errors.New("give exactly one of magnet and torrent")}
	}
	e := &entry{rec: record{AddedAt: time.Now().UTC(), SeedRatio: d.cfg.SeedRatio, Paused: req.Paused}}
	if req.Magnet != "" {
		l, err := magnet.Parse(req.Magnet)
		if err != nil {
			return api.Torrent{}, api.BadRequest{Err: err}
		}
		if !l.HasV1 {
			return api.Torrent{}, api.BadRequest{Err: errors.New("magnet link has no v1 info-hash (urn:btih)")}
		}
		e.ih = metadata.InfoHash(l.InfoHash)
		e.rec.Magnet, e.rec.Name = l.String(), l.Name
		e.trackers, e.peers = magnetTrackers(l), magnetPeers(l)
	} else {
		mi, err := metadata.ParseMetaInfo(req.Torrent)
		if err != nil {
			return api.Torrent{}, api.BadRequest{Err: fmt.Errorf("torrent: %w", err)}
		}
		e.ih, e.info, e.rec.Name = mi.Info.InfoHash, mi.Info, mi.Info.Name
		tiers := mi.AnnounceList
		if len(tiers) == 0 && mi.Announce != "" {
			tiers = [][]string{{mi.Announce}}
		}
		e.trackers = filterTrackers(tiers)
		e.rec.Trackers = e.trackers
		// A trackerless .torrent's nodes may lead to its swarm (BEP 5);
		// the DHT decides whether each is worth a ping, within its bounds.
		for _, n := range mi.Nodes {
			if ap, err := netip.ParseAddrPort(n); err == nil {
				d.cfg.DHT.OfferNode(ap)
			}
		}
	}
	e.rec.InfoHash = hex.EncodeToString(e.ih[:])
	dir := req.Dir
	if dir == "" {
		dir = d.cfg.Dir
	}
	if !filepath.IsAbs(dir) {
		return api.Torrent{}, api.BadRequest{Err: fmt.Errorf("directory %q is not absolute", dir)}
	}
	e.rec.Dir = filepath.Clean(dir)
	if req.SeedRatio != nil {
		r := *req.SeedRatio
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return api.Torrent{}, api.BadRequest{Err: fmt.Errorf("seed ratio %v: want 0 (forever) or more", r)}
		}
		e.rec.SeedRatio = r
	}
	if err := d.admit(e.ih); err != nil {
		return api.Torrent{}, err
	}
	if e.info != nil {
		if err := d.saveInfo(e.info, e.trackers); err != nil {
			return api.Torrent{}, fmt.Errorf("saving the .torrent: %w", err)
		}
		e.infoSaved = true
	}
	d.mu.Lock()
	if err := d.admitLocked(e.ih); err != nil {
		d.mu.Unlock()
		return api.Torrent{}, err
	}
	d.torrents[e.ih] = e
	d.scheduleLocked()
	v := e.view()
	d.mu.Unlock()
	if err := d.save(); err != nil {
		return v, err
	}
	d.log.Info("torrent added", zap.String("info_hash", e.rec.InfoHash), zap.String("name", v.Name), zap.String("dir", e.rec.Dir))
	return v, nil
}

// lookupLocked is the torrent of ih, nil if there is none or it is
// being removed.
func (d *Daemon) lookupLocked(ih metadata.InfoHash) *entry {
	if e := d.torrents[ih]; e != nil && !e.removing {
		return e
	}
	return nil
}

func (d *Daemon) admit(ih metadata.InfoHash) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.admitLocked(ih)
}

func (d *Daemon) admitLocked(ih metadata.InfoHash) error {
	switch {
	case d.closed:
		return errors.New("daemon: closed")
	case d.torrents[ih] != nil && d.torrents[ih].removing:
		return fmt.Errorf("%w: it is being removed, try again once it is gone", api.ErrExists)
	case d.torrents[ih] != nil:
		return api.ErrExists
	case len(d.torrents) >= MaxTorrents:
		return api.BadRequest{Err: fmt.Errorf("the daemon holds %d torrents, its most: remove some first", MaxTorrents)}
	}
	return nil
}

// List implements api.Backend: from the latest samples, not the torrents'
// loops, so that it costs no more with many torrents running.
func (d *Daemon) List(ctx context.Context) ([]api.Torrent, error) {
	d.mu.Lock()
	out := make([]api.Torrent, 0, len(d.torrents))
	for _, e := range d.torrents {
		if !e.removing {
			out = append(out, e.view())
		}
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b api.Torrent) int {
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		return strings.Compare(a.InfoHash, b.InfoHash)
	})
	return out, nil
}

// Get implements api.Backend. The piece map and the files' done bytes
// are a running torrent's own (read from its loop, one torrent at a
// time); a stopped one shows what was read last, in this process, and a
// complete one that has not run since shows everything.
func (d *Daemon) Get(ctx context.Context, ih metadata.InfoHash) (api.TorrentDetail, error) {
	d.mu.Lock()
	e := d.lookupLocked(ih)
	var r *running
	if e != nil && e.run != nil && !e.run.stopping {
		r = e.run
	}
	d.mu.Unlock()
	if e == nil {
		return api.TorrentDetail{}, api.ErrNotFound
	}
	if r != nil {
		d.readProgress(e, r)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lookupLocked(ih) != e {
		return api.TorrentDetail{}, api.ErrNotFound
	}
	td := api.TorrentDetail{Torrent: e.view(), Files: []api.File{}, PeerList: []api.Peer{}}
	if e.info != nil {
		p := e.prog
		if p != nil && p.pieces != e.info.NumPieces() {
			p = nil
		}
		complete := p == nil && e.rec.Complete
		if p != nil || complete {
			td.PieceBuckets = p.buckets(e.info.NumPieces())
		}
		for i, f := range e.info.Files {
			if f.Padding {
				continue
			}
			td.FilesTotal++
			if len(td.Files) == api.MaxDetailFiles {
				continue
			}
			af := api.File{Path: strings.Join(f.Path, "/"), Length: f.Length}
			switch {
			case complete:
				af.Done = f.Length
			case p != nil && i < len(p.fileDone):
				af.Done = p.fileDone[i]
			}
			td.Files = append(td.Files, af)
		}
	}
	if e.run != nil {
		for _, p := range e.sess.PeerList {
			td.PeerList = append(td.PeerList, api.Peer{
				Addr: p.Addr.String(), Outgoing: p.Outgoing, Transport: p.Transport, Encryption: p.Encryption,
				Downloaded: p.Downloaded, Uploaded: p.Uploaded,
			})
		}
	}
	return td, nil
}

// progressSnap is a torrent's progress packed: one bit per piece.
type progressSnap struct {
	pieces   int
	bits     []byte
	fileDone []int64
}

func packProgress(p peer.Progress) *progressSnap {
	s := &progressSnap{pieces: len(p.Pieces), bits: make([]byte, (len(p.Pieces)+7)/8), fileDone: p.FileDone}
	for i, ok := range p.Pieces {
		if ok {
			s.bits[i/8] |= 0x80 >> (i % 8)
		}
	}
	return s
}

// buckets is api.TorrentDetail.PieceBuckets; a nil snapshot is a
// complete torrent of n pieces.
func (s *progressSnap) buckets(n int) []float64 {
	return api.PieceBuckets(n, func(i int) bool { return s == nil || s.bits[i/8]&(0x80>>(i%8)) != 0 })
}

// readProgress reads the progress of e's session r into e.prog.
func (d *Daemon) readProgress(e *entry, r *running) {
	if !metadataKnown(r.t) {
		return // no pieces yet, and a checking loop does not answer
	}
	ctx, cancel := context.WithTimeout(context.Background(), sampleTimeout)
	p, err := r.t.Progress(ctx)
	cancel()
	if err != nil || p.Pieces == nil {
		return
	}
	snap := packProgress(p)
	d.mu.Lock()
	if e.run == r {
		e.prog = snap
	}
	d.mu.Unlock()
}

// SetAnnouncePort makes every torrent, running and to come, announce
// port (a gateway's mapping of the listener's) instead of the listener's
// own; 0 goes back to the listener's.
func (d *Daemon) SetAnnouncePort(port uint16) {
	d.mu.Lock()
	d.annPort = port
	var ts []*peer.Torrent
	for _, e := range d.torrents {
		if e.run != nil && !e.run.stopping {
			ts = append(ts, e.run.t)
		}
	}
	d.mu.Unlock()
	for _, t := range ts {
		t.SetAnnouncePort(port)
	}
}

// Pause implements api.Backend: it returns once the torrent has stopped,
// or, if ctx ends first, with an error while it goes on stopping.
func (d *Daemon) Pause(ctx context.Context, ih metadata.InfoHash) (api.Torrent, error) {
	d.mu.Lock()
	e := d.lookupLocked(ih)
	if e == nil {
		d.mu.Unlock()
		return api.Torrent{}, api.ErrNotFound
	}
	changed := !e.rec.Paused
	e.rec.Paused = true
	d.mu.Unlock()
	serr := d.stop(ctx, e)
	d.mu.Lock()
	d.scheduleLocked()
	v := e.view()
	d.mu.Unlock()
	if changed {
		if err := d.save(); err != nil {
			return v, err
		}
	}
	return v, serr
}

// Resume implements api.Backend. A torrent stopped at its seed ratio
// resumes seeding without one (as if added with seed ratio 0): with its
// ratio it would stop again at once. A torrent stopped by an error tries
// again.
func (d *Daemon) Resume(ctx context.Context, ih metadata.InfoHash) (api.Torrent, error) {
	d.mu.Lock()
	e := d.lookupLocked(ih)
	if e == nil {
		d.mu.Unlock()
		return api.Torrent{}, api.ErrNotFound
	}
	if e.rec.Done {
		e.rec.Done, e.rec.SeedRatio = false, 0
	}
	e.rec.Paused, e.err = false, ""
	if e.info == nil && e.rec.Magnet == "" && d.cfg.StateDir != "" {
		// Its .torrent was unreadable at load: it may be readable now.
		if err := d.readInfo(e); err != nil {
			e.err = err.Error()
		} else if e.info == nil {
			e.err = "its saved .torrent is lost: remove it and add it again"
		}
	}
	d.scheduleLocked()
	v := e.view()
	d.mu.Unlock()
	if err := d.save(); err != nil {
		return v, err
	}
	return v, nil
}

// Remove implements api.Backend. With deleteData it deletes the files
// the torrent claimed (see storage.RemoveFiles: none unless its resume
// record is there) and that record; the directories of its paths go if
// left empty. The torrent is removed even if some data is left: the error
// then names what was left and why, and the log says so too.
func (d *Daemon) Remove(ctx context.Context, ih metadata.InfoHash, deleteData bool) error {
	d.mu.Lock()
	e := d.lookupLocked(ih)
	if e == nil {
		d.mu.Unlock()
		return api.ErrNotFound
	}
	// Left in the map, marked, until the end: nothing restarts it, and
	// an Add of the same info-hash is refused until then.
	e.removing = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.torrents[ih] == e {
			delete(d.torrents, ih)
		}
		d.mu.Unlock()
	}()
	// Not bounded by ctx: nothing is deleted under a running session,
	// and the tombstone stays until the session has stopped.
	_ = d.stop(context.Background(), e)
	d.mu.Lock()
	info := e.info
	d.scheduleLocked()
	d.mu.Unlock()
	if err := d.save(); err != nil {
		return err
	}
	if d.removingHook != nil {
		d.removingHook(ih)
	}
	if d.cfg.StateDir != "" {
		if err := os.Remove(d.torrentPath(ih)); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("removing the saved .torrent", zap.Error(err))
		}
	}
	d.log.Info("torrent removed", zap.String("info_hash", e.rec.InfoHash), zap.Bool("delete_data", deleteData))
	if deleteData && info != nil {
		if err := storage.RemoveFiles(e.rec.Dir, info); err != nil {
			d.log.Warn("torrent removed; some of its data was left", zap.String("info_hash", e.rec.InfoHash), zap.Error(err))
			return fmt.Errorf("removed, but some data was left: %w", err)
		}
	}
	return nil
}

// magnetTrackers are a magnet link's trackers, each a tier of its own
// (as libtorrent reads them).
func magnetTrackers(l magnet.Link) [][]string {
	var tiers [][]string
	for _, u := range l.Trackers {
		tiers = append(tiers, []string{u})
	}
	return filterTrackers(tiers)
}

func magnetPeers(l magnet.Link) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range l.Peers {
		if ap, err := netip.ParseAddrPort(p); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

// filterTrackers keeps the first tracker.MaxTrackers distinct URLs that
// the announcer can ask.
func filterTrackers(tiers [][]string) [][]string {
	seen := make(map[string]bool)
	kept := 0
	var out [][]string
	for _, tier := range tiers {
		var t []string
		for _, u := range tier {
			if !seen[u] && kept < tracker.MaxTrackers && tracker.CheckURL(u) == nil {
				t = append(t, u)
				kept++
			}
			seen[u] = true
		}
		if len(t) > 0 {
			out = append(out, t)
		}
	}
	return out
}
