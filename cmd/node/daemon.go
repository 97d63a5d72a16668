package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"node/cmd/node/api"
	"node/cmd/node/daemon"
	"node/cmd/node/metrics"
	"node/dht"
	"node/metadata"
	"node/peer/utp"
)

// Files node daemon keeps in the state directory for its clients.
const (
	// apiTokenFile holds the API token: 32 random bytes, hex, made once.
	apiTokenFile = "api-token"
	// apiAddrFile holds the address the API listens on, while it runs.
	apiAddrFile = "api-addr"
	// defaultAPIAddr is --api's default: loopback only, on a port next to
	// the one node dht --metrics examples use.
	defaultAPIAddr = "127.0.0.1:9180"
	// apiTokenBytes is the token's length before hex.
	apiTokenBytes = 32
)

func runDaemon(args []string, stderr io.Writer) error {
	var f dhtFlags
	fs := newFlagSet("daemon", stderr, "node daemon [flags]")
	f.register(fs, ":6881")
	f.registerUTP(fs)
	f.registerEncryption(fs)
	dir := fs.String("dir", defaultDownloadDir(), "default download `directory` of the torrents added (an absolute path; default ~/Downloads, else the current directory)")
	apiAddr := fs.String("api", defaultAPIAddr, "TCP `address` of the HTTP API and /metrics; every request needs the token (see the state directory's "+apiTokenFile+"), and the Host header must name a loopback address")
	maxDown := fs.Int("max-active-downloads", daemon.DefaultMaxActiveDownloads, "torrents downloading at once; the others wait queued, first added first")
	maxSeeds := fs.Int("max-active-seeds", daemon.DefaultMaxActiveSeeds, "complete torrents seeding at once; the others wait queued")
	seedRatio := fs.Float64("seed-ratio", 0, "stop seeding a torrent once uploaded/size reaches this `ratio` (state done); 0: seed forever. A torrent added with its own ratio keeps it")
	upRate, downRate := registerRateFlags(fs)
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
	log, ctx, stopped, err := f.untilStopped(stderr)
	if err != nil {
		return err
	}
	defer stopped()

	dm := metrics.NewDHT()
	node, uss, err := f.startDaemonNode(log, dm)
	if err != nil {
		return err
	}
	defer node.Close()
	dm.Watch(node)
	go func() {
		if _, err := node.Bootstrap(ctx); err != nil && ctx.Err() == nil {
			log.Warn("DHT bootstrap failed; retrying in the background", zap.Error(err))
		}
	}()
	host, _, _ := net.SplitHostPort(f.listen)
	cfg := daemon.Config{
		StateDir: f.stateDir, Dir: downloadDir, DHT: node,
		Listen:     func(metadata.InfoHash) (net.Listener, error) { return torrentListener(host) },
		Encryption: f.encryption, Trackers: !*noTrackers,
		MaxActiveDownloads: *maxDown, MaxActiveSeeds: *maxSeeds, SeedRatio: *seedRatio,
		MaxUploadRate: upRate.bytes, MaxDownloadRate: downRate.bytes,
		Logger: log,
	}
	if len(uss) > 0 {
		cfg.UTPDial = uss.dial
		// Incoming uTP has no torrent to go to until one listener takes
		// every torrent's peers: refused, so that it holds nothing.
		for _, s := range uss {
			go refuseAll(s.Listener())
		}
	}
	d, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	token, err := apiToken(f.stateDir, stderr)
	if err != nil {
		return err
	}
	if ap, err := netip.ParseAddrPort(*apiAddr); err != nil || !ap.Addr().IsLoopback() {
		log.Warn("the API listens beyond loopback: only its token guards it", zap.String("api", *apiAddr))
	}
	srv, err := api.Listen(*apiAddr, api.ServerConfig{
		Backend: d, Token: token, Logger: log,
		Metrics: metrics.Handler(metrics.NewRegistry(dm, metrics.NewDaemon(d)), log),
	})
	if err != nil {
		d.Close()
		return fmt.Errorf("--api: %w", err)
	}
	defer srv.Close()
	if f.stateDir != "" {
		if err := daemon.WriteFileAtomic(filepath.Join(f.stateDir, apiAddrFile), []byte(srv.Addr().String()+"\n"), 0o600); err != nil {
			d.Close()
			return err
		}
		defer os.Remove(filepath.Join(f.stateDir, apiAddrFile))
	}
	log.Info("daemon started", zap.Stringer("id", node.ID()), zap.Stringer("dht", node.Addr()), zap.String("addr6", addr6Text(node)),
		zap.String("api", "http://"+srv.Addr().String()), zap.String("dir", downloadDir), zap.String("state_dir", f.stateDir))
	// Torrents take ports of their own until they share one: only the
	// DHT's is mapped.
	pm := f.startPortMapping(node.Addr().Addr(), 0, node.Addr().Port(), node, nil, log)
	defer closePortMapping(pm, log)
	err = d.Run(ctx)
	log.Info("shutting down")
	return err
}

// torrentListener opens a torrent's listener for incoming peers: TCP on
// --listen's host, on a port of its own. It is a stand-in until one
// listener on --listen's port sorts every torrent's peers by info-hash.
var torrentListener = func(host string) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// refuseAll closes every connection ln accepts, until ln closes.
func refuseAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// startDaemonNode binds the DHT's sockets (with uTP on them, as fetch
// and seed do) and starts the node, its lookups observed by dm.
func (f *dhtFlags) startDaemonNode(log *zap.Logger, dm *metrics.DHT) (*dht.Node, utpSockets, error) {
	l6, err := f.ipv6Listen()
	if err != nil {
		return nil, nil, err
	}
	withUTP := f.useUTP(log)
	cfg, err := f.config(log)
	if err != nil {
		return nil, nil, err
	}
	pc, us4, err := listenPacket(udpNet(f.listen), f.listen, withUTP)
	if err != nil {
		return nil, nil, fmt.Errorf("DHT: listen %s: %w", f.listen, err)
	}
	var uss utpSockets
	if us4 != nil {
		uss = append(uss, us4)
	}
	cfg.Conn, cfg.Listen6, cfg.OnLookup = pc, "", dm.ObserveLookup
	if l6 != "" {
		var us6 *utp.Socket
		if cfg.Conn6, us6, err = listenUDP6UTP(l6, localPort(pc), withUTP); err != nil {
			log.Warn("no IPv6 DHT socket; running on IPv4 alone", zap.String("listen6", l6), zap.Error(err))
		} else if us6 != nil {
			uss = append(uss, us6)
		}
	}
	node, err := dht.New(cfg) // owns Conn and Conn6, even when it fails
	return node, uss, err
}

// apiToken is the state directory's API token, made on first use; without
// a state directory a new one, printed on stderr.
func apiToken(stateDir string, stderr io.Writer) (string, error) {
	mk := func() string {
		b := make([]byte, apiTokenBytes)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	if stateDir == "" {
		t := mk()
		fmt.Fprintf(stderr, "node daemon: no state directory; API token %s\n", t)
		return t, nil
	}
	// The DHT node holds the state directory's lock: no other daemon
	// makes a token at the same time.
	path := filepath.Join(stateDir, apiTokenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t := mk()
		return t, daemon.WriteFileAtomic(path, []byte(t+"\n"), 0o600)
	}
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if _, err := hex.DecodeString(t); err != nil || len(t) != 2*apiTokenBytes {
		return "", fmt.Errorf("%s: not a token of %d hex digits; remove it to make a new one", path, 2*apiTokenBytes)
	}
	return t, nil
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
