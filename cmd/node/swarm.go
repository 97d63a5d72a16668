package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"node/dht"
	"node/magnet"
	"node/metadata"
	"node/peer"
	"node/storage"
)

// target is what the user asked to fetch or seed.
type target struct {
	ih       metadata.InfoHash
	info     *metadata.Info // nil for a magnet link
	name     string
	peers    []netip.AddrPort // x.pe
	nodes    []string         // a .torrent's "nodes" key (BEP 5)
	trackers int
}

// loadTarget reads a magnet link or a .torrent file. Its errors are the
// user's input being wrong: exit code exitBadInput.
func loadTarget(arg string) (*target, error) {
	if strings.HasPrefix(strings.ToLower(arg), "magnet:") {
		l, err := magnet.Parse(arg)
		if err != nil {
			return nil, err
		}
		if !l.HasV1 {
			return nil, errors.New("magnet link has no v1 info-hash (urn:btih); v2-only torrents are not supported yet")
		}
		t := &target{ih: metadata.InfoHash(l.InfoHash), name: l.Name, trackers: len(l.Trackers)}
		for _, p := range l.Peers {
			if ap, err := netip.ParseAddrPort(p); err == nil {
				t.peers = append(t.peers, ap)
			}
		}
		return t, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, err
	}
	mi, err := metadata.ParseMetaInfo(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	t := &target{ih: mi.Info.InfoHash, info: mi.Info, name: mi.Info.Name, nodes: mi.Nodes}
	if mi.Announce != "" || len(mi.AnnounceList) > 0 {
		t.trackers = max(1, len(mi.AnnounceList))
	}
	return t, nil
}

// listenBoth binds TCP (peers) and UDP (DHT) on one host and port, as
// peers expect: the port we announce is the one they dial. With port 0 it
// lets the kernel pick the TCP port and takes the same one for UDP.
func listenBoth(addr string) (net.Listener, net.PacketConn, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, usagef("--listen %q: %v", addr, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return nil, nil, usagef("--listen %q: bad port", addr)
	}
	for try := 0; try < 10; try++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, ps))
		if err != nil {
			return nil, nil, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		if port != 0 {
			return nil, nil, err
		}
	}
	return nil, nil, errors.New("could not bind TCP and UDP on one port")
}

// swarm is a torrent with its DHT node.
type swarm struct {
	node *dht.Node
	t    *peer.Torrent
}

// startSwarm binds the sockets, starts the DHT node (bootstrapping in the
// background) and prepares the torrent.
func startSwarm(ctx context.Context, f *dhtFlags, bootstrapSet bool, tg *target, dir string, log *zap.Logger, mod func(*peer.Config)) (*swarm, error) {
	ln, pc, err := listenBoth(f.listen)
	if err != nil {
		return nil, err
	}
	cfg := f.config(log)
	cfg.Conn = pc
	if len(tg.nodes) > 0 {
		// A trackerless .torrent's own nodes bootstrap the DHT; the public
		// routers are only a fallback the user did not override.
		if bootstrapSet {
			cfg.Bootstrap = append(cfg.Bootstrap, tg.nodes...)
		} else {
			cfg.Bootstrap = tg.nodes
		}
	}
	node, err := dht.New(cfg)
	if err != nil {
		ln.Close()
		pc.Close()
		return nil, err
	}
	go func() {
		if _, err := node.Bootstrap(ctx); err != nil && ctx.Err() == nil {
			log.Warn("DHT bootstrap failed; retrying in the background", zap.Error(err))
		}
	}()
	pcfg := peer.Config{
		InfoHash: tg.ih, Info: tg.info, Dir: dir, Listener: ln, DHT: node,
		Peers: tg.peers, Logger: log,
	}
	if mod != nil {
		mod(&pcfg)
	}
	t, err := peer.New(pcfg)
	if err != nil {
		ln.Close()
		node.Close()
		return nil, err
	}
	return &swarm{node: node, t: t}, nil
}

// inputError is the exit for a magnet link or .torrent that cannot be
// used: refused for its file names, or not parseable.
func inputError(err error) error {
	if errors.Is(err, metadata.ErrUnsafePath) {
		return exitError{exitUnsafe, "refusing the torrent: " + err.Error() + "; nothing was written"}
	}
	return exitError{exitBadInput, err.Error()}
}

// exitFor maps a torrent's failure to its exit code.
func exitFor(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, metadata.ErrUnsafePath):
		return exitError{exitUnsafe, "refusing the torrent: " + err.Error() + "; nothing was written"}
	case errors.Is(err, storage.ErrForeignData):
		return exitError{exitExists, "refusing to overwrite: " + err.Error() +
			"; nothing was written: move it away, or pass --overwrite to replace it (data that verifies is kept)"}
	case errors.Is(err, peer.ErrBadMetadata):
		return exitError{exitBadInput, err.Error()}
	case errors.Is(err, syscall.ENOSPC):
		return exitError{exitDiskFull, "disk full: " + err.Error() + "; free some space and run the same command again to resume"}
	case isDiskError(err):
		return exitError{exitDisk, err.Error()}
	}
	return err
}

func isDiskError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// runSwarm starts the swarm for tg, runs the torrent and supervises it
// until it is done, fails or is interrupted (SIGINT, SIGTERM). It returns
// the torrent, whose Info stays readable, and the command's outcome.
func runSwarm(f *dhtFlags, bootstrapSet bool, tg *target, dir string, log *zap.Logger, out *reporter,
	mod func(*peer.Config), o superviseOpts) (*peer.Torrent, error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	sw, err := startSwarm(runCtx, f, bootstrapSet, tg, dir, log, mod)
	if err != nil {
		return nil, err
	}
	defer sw.node.Close()
	if o.seedOnly {
		out.note("verifying " + dir + " and serving until interrupted")
	}
	runErr := make(chan error, 1)
	go func() { runErr <- sw.t.Run(runCtx) }()
	return sw.t, supervise(ctx, sw, out, o, runErr, cancelRun)
}
