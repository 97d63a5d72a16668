package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"node/cmd/node/api"
	"node/cmd/node/daemon"
	"node/cmd/node/metrics"
	"node/cmd/node/web"
	"node/dht"
	"node/peer"
	"node/peer/utp"
)

// defaultAPIAddr is --api's default: loopback only, on a port next to
// the one node dht --metrics examples use.
const defaultAPIAddr = "127.0.0.1:9180"

func runDaemon(args []string, stderr io.Writer) error {
	var f dhtFlags
	fs := newFlagSet("daemon", stderr, "node daemon [flags]")
	f.register(fs, ":6881")
	f.registerUTP(fs)
	f.registerEncryption(fs)
	dir := fs.String("dir", defaultDownloadDir(), "default download `directory` of the torrents added (an absolute path; default ~/Downloads, else the current directory)")
	apiAddr := fs.String("api", defaultAPIAddr, "TCP `address` of the HTTP API and /metrics; every request needs the token (see the state directory's "+api.TokenFile+"), and the Host header must name a loopback address")
	maxDown := fs.Int("max-active-downloads", daemon.DefaultMaxActiveDownloads, "torrents downloading at once; the others wait queued, first added first")
	maxSeeds := fs.Int("max-active-seeds", daemon.DefaultMaxActiveSeeds, "complete torrents seeding at once; the others wait queued")
	seedRatio := fs.Float64("seed-ratio", 0, "stop seeding a torrent once uploaded/size reaches this `ratio` (state done); 0: seed forever. A torrent added with its own ratio keeps it")
	upRate, downRate := registerRateFlags(fs)
	// One limit each, shared by every torrent: the help says so.
	fs.Lookup("max-upload-rate").Usage = "cap on piece data sent, in bytes/s over all torrents together, e.g. 500K, 2M, 1.5MiB " +
		"(K/M/G: powers of 1000; KiB/MiB/GiB: powers of 1024; 0: unlimited)"
	fs.Lookup("max-download-rate").Usage = "cap on piece data received, in bytes/s over all torrents together; same `rate` syntax as --max-upload-rate"
	noTrackers := registerTrackerFlag(fs)
	f.registerPortMapping(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	switch {
	case *maxDown < 1:
		return usagef("--max-active-downloads must be at least 1")
	case *maxSeeds < 1:
		return usagef("--max-active-seeds must be at least 1")
	case *seedRatio < 0:
		return usagef("--seed-ratio must be positive")
	case f.listen == noSocket:
		return usagef("--listen %s is for node dht and node peers only: the daemon takes peers on --listen's address", noSocket)
	}
	downloadDir, err := filepath.Abs(*dir)
	if err != nil {
		return usagef("--dir %q: %v", *dir, err)
	}
	log, sigCtx, stopped, err := f.untilStopped(stderr)
	if err != nil {
		return err
	}
	defer stopped()
	ctx, cancel := secondSignalKills(sigCtx, stopped, log)
	defer cancel()

	dm := metrics.NewDHT()
	sk, err := f.startDaemonNode(log, dm)
	if err != nil {
		return err
	}
	node := sk.node
	defer node.Close()
	dm.Watch(node)
	go func() {
		if _, err := node.Bootstrap(ctx); err != nil && ctx.Err() == nil {
			log.Warn("DHT bootstrap failed; retrying in the background", zap.Error(err))
		}
	}()
	// One port, TCP and uTP, for every torrent's incoming peers, as for
	// fetch's one torrent: the port the DHT announces.
	mux := peer.NewMux(peer.MuxConfig{Listeners: sk.listeners, Encryption: f.encryption, Logger: log})
	defer mux.Close() // after the torrents: deferred before d.Run returns
	cfg := daemon.Config{
		StateDir: f.stateDir, Dir: downloadDir, DHT: node, Mux: mux,
		Encryption: f.encryption, Trackers: !*noTrackers,
		MaxActiveDownloads: *maxDown, MaxActiveSeeds: *maxSeeds, SeedRatio: *seedRatio,
		MaxUploadRate: upRate.bytes, MaxDownloadRate: downRate.bytes,
		Logger: log,
	}
	if len(sk.utp) > 0 {
		cfg.UTPDial = sk.utp.dial
	}
	d, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	var token string
	if f.stateDir == "" {
		token = newToken()
		fmt.Fprintf(stderr, "node daemon: no state directory; API token %s\n", token)
	} else if token, err = api.LoadOrCreateToken(f.stateDir); err != nil {
		return err
	}
	if ap, err := netip.ParseAddrPort(*apiAddr); err != nil || !ap.Addr().IsLoopback() {
		log.Warn("the API listens beyond loopback: only its token guards it", zap.String("api", *apiAddr))
	}
	srv, err := api.Listen(*apiAddr, api.ServerConfig{
		Backend: d, Token: token, Logger: log, Page: web.Handler(),
		Metrics: metrics.Handler(metrics.NewRegistry(dm, metrics.NewDaemon(d)), log),
	})
	if err != nil {
		return fmt.Errorf("--api: %w", err)
	}
	defer srv.Close()
	addr := srv.Addr().String()
	if f.stateDir != "" {
		if err := api.WriteAddr(f.stateDir, addr); err != nil {
			return err
		}
		defer func() {
			if err := api.RemoveAddr(f.stateDir, addr); err != nil {
				log.Warn("removing the API address file", zap.Error(err))
			}
		}()
	}
	peerAddr := sk.listeners[0].Addr().(*net.TCPAddr).AddrPort()
	log.Info("daemon started", zap.Stringer("id", node.ID()), zap.Stringer("dht", node.Addr()), zap.String("addr6", addr6Text(node)),
		zap.Stringer("peers", peerAddr), zap.Bool("utp", len(sk.utp) > 0),
		zap.String("api", "http://"+addr), zap.String("dir", downloadDir), zap.String("state_dir", f.stateDir))
	// The login URL's code is good once, for api.LoginCodeTTL: stderr
	// only, never the log, which keeps what it is given (a journal).
	login := srv.NewLoginURL()
	page, metricsURL := urlPath(login, "/"), urlPath(login, metrics.Path)
	fmt.Fprintf(stderr, "node daemon: web page: %s (logs in once, within %v; node url prints another)\n", login, api.LoginCodeTTL)
	fmt.Fprintf(stderr, "node daemon: metrics: %s (Authorization: Bearer token)\n", metricsURL)
	log.Info("web page", zap.String("url", page), zap.String("metrics", metricsURL))
	pm := f.startPortMapping(peerAddr.Addr(), peerAddr.Port(), node.Addr().Port(), node, func(ext uint16) {
		if ext == peerAddr.Port() {
			ext = 0
		}
		d.SetAnnouncePort(ext)
	}, log)
	defer closePortMapping(pm, log)
	return d.Run(ctx)
}

// secondSignalKills returns a context done once the first SIGINT or
// SIGTERM has been taken (sigCtx done) and its handler removed (stop):
// a second one, during a shutdown that takes long (torrents saving their
// resume data to a slow disk), then ends the process as by default.
func secondSignalKills(sigCtx context.Context, stop func(), log *zap.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	after := context.AfterFunc(sigCtx, func() {
		stop()
		log.Info("shutting down; a second interrupt ends the process at once")
		cancel()
	})
	return ctx, func() {
		after()
		cancel()
	}
}

// daemonSockets are node daemon's sockets: the DHT node on its UDP
// sockets, and the peer listeners on the same port (TCP, then the uTP
// sockets' listeners).
type daemonSockets struct {
	node      *dht.Node
	listeners []net.Listener
	utp       utpSockets
}

// startDaemonNode binds the peer and DHT sockets (TCP and UDP on one
// port, uTP on the UDP sockets, as fetch and seed do; a TCP listener
// beside a specific IPv6 DHT address) and starts the node, its lookups
// observed by dm.
func (f *dhtFlags) startDaemonNode(log *zap.Logger, dm *metrics.DHT) (*daemonSockets, error) {
	l6, err := f.ipv6Listen()
	if err != nil {
		return nil, err
	}
	withUTP := f.useUTP(log)
	cfg, err := f.config(log)
	if err != nil {
		return nil, err
	}
	ln, pc, us4, err := listenBoth(f.listen, udpNet(f.listen), withUTP)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", f.listen, err)
	}
	sk := &daemonSockets{listeners: []net.Listener{ln}}
	if us4 != nil {
		sk.utp = append(sk.utp, us4)
	}
	if l := peerListen6(l6, ln, nil, log); l != nil {
		sk.listeners = append(sk.listeners, l)
	}
	cfg.Conn, cfg.Listen6, cfg.OnLookup = pc, "", dm.ObserveLookup
	if l6 != "" {
		var us6 *utp.Socket
		if cfg.Conn6, us6, err = listenUDP6UTP(l6, localPort(pc), withUTP); err != nil {
			log.Warn("no IPv6 DHT socket; running on IPv4 alone", zap.String("listen6", l6), zap.Error(err))
		} else if us6 != nil {
			sk.utp = append(sk.utp, us6)
		}
	}
	sk.listeners = append(sk.listeners, sk.utp.listeners()...)
	if sk.node, err = dht.New(cfg); err != nil { // owns Conn and Conn6, even when it fails
		for _, l := range sk.listeners {
			l.Close()
		}
		return nil, err
	}
	return sk, nil
}

// urlPath is u with path p and no query or fragment.
func urlPath(u, p string) string {
	x, err := url.Parse(u)
	if err != nil {
		return u
	}
	x.Path, x.RawQuery, x.Fragment = p, "", ""
	return x.String()
}

// newToken is an API token for a daemon without a state directory: it
// lasts as long as the process.
func newToken() string {
	b := make([]byte, api.TokenBytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// defaultDownloadDir is --dir's default: ~/Downloads, else the current
// directory.
func defaultDownloadDir() string {
	if h, err := os.UserHomeDir(); err == nil && filepath.IsAbs(h) {
		return filepath.Join(h, "Downloads")
	}
	if wd, err := os.Getwd(); err == nil {
		return wd
	}
	return "."
}
