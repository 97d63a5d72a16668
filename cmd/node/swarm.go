package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"node/cmd/node/portmap"
	"node/dht"
	"node/peer"
	"node/peer/utp"
)

// listenBoth binds TCP (peers) and UDP (DHT, and uTP when withUTP) on
// one host and port, as peers expect: the port we announce is the one
// they dial, over TCP or uTP. With port 0 it lets the kernel pick the TCP
// port and takes the same one for UDP. udpNet is the UDP socket's network
// (see udpNet).
func listenBoth(addr, udpNet string, withUTP bool) (net.Listener, net.PacketConn, *utp.Socket, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, nil, usagef("--listen %q: %v", addr, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return nil, nil, nil, usagef("--listen %q: bad port", addr)
	}
	for try := 0; try < 10; try++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, ps))
		if err != nil {
			return nil, nil, nil, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, us, err := listenPacket(udpNet, net.JoinHostPort(host, strconv.Itoa(p)), withUTP)
		if err == nil {
			return ln, pc, us, nil
		}
		ln.Close()
		if port != 0 {
			return nil, nil, nil, err
		}
	}
	return nil, nil, nil, errors.New("could not bind TCP and UDP on one port")
}

// listenUDP6 binds the IPv6 DHT socket on addr; port 0 there takes the
// IPv4 socket's port, as peers expect one DHT port, when it is free.
func listenUDP6(addr string, port int) (net.PacketConn, error) {
	pc, _, err := listenUDP6UTP(addr, port, false)
	return pc, err
}

// listenUDP6UTP is listenUDP6 with uTP on the socket when withUTP.
func listenUDP6UTP(addr string, port int, withUTP bool) (net.PacketConn, *utp.Socket, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, err
	}
	if ap.Port() == 0 && port != 0 {
		if pc, us, err := listenPacket("udp6", netip.AddrPortFrom(ap.Addr(), uint16(port)).String(), withUTP); err == nil {
			return pc, us, nil
		}
	}
	return listenPacket("udp6", addr, withUTP)
}

func localPort(pc net.PacketConn) int {
	if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		return ua.Port
	}
	return 0
}

// peerListen6 opens a TCP listener beside a specific IPv6 DHT address
// (--listen6, or the [::1] that follows a loopback --listen) on the peer
// port, when no listener takes IPv6 peers there yet: the IPv6 DHT
// announces that address, and peers that find it there dial it. Nil if
// there is nothing to add or it cannot be bound (IPv4 peers still work).
func peerListen6(l6 string, ln net.Listener, more []net.Listener, log *zap.Logger) net.Listener {
	ap, err := netip.ParseAddrPort(l6)
	if err != nil || ap.Addr().IsUnspecified() {
		return nil
	}
	for _, l := range append([]net.Listener{ln}, more...) {
		a := l.Addr().(*net.TCPAddr).AddrPort().Addr()
		if a.IsUnspecified() || a == ap.Addr() {
			return nil
		}
	}
	port := ln.Addr().(*net.TCPAddr).Port
	l, err := net.Listen("tcp6", net.JoinHostPort(ap.Addr().String(), strconv.Itoa(port)))
	if err != nil {
		log.Warn("no IPv6 peer listener beside the IPv6 DHT socket", zap.String("addr", ap.Addr().String()), zap.Error(err))
		return nil
	}
	return l
}

// swarm is a torrent with its DHT node and its port mapping (nil when
// off).
type swarm struct {
	node *dht.Node
	t    *peer.Torrent
	pm   *portmap.Mapper
}

// startSwarm binds the sockets, starts the DHT node (bootstrapping in the
// background) and prepares the torrent.
func startSwarm(ctx context.Context, f *dhtFlags, bootstrapSet bool, tg *target, dir string, log *zap.Logger, mod func(*peer.Config)) (*swarm, error) {
	if f.listen == noSocket {
		return nil, usagef("--listen %s is for node dht and node peers only: fetch and seed take peers on --listen's address and port (to run without an IPv6 DHT, give --listen6 %s)", noSocket, noSocket)
	}
	l6, err := f.ipv6Listen()
	if err != nil {
		return nil, err
	}
	withUTP := f.useUTP(log)
	ln, pc, us4, err := listenBoth(f.listen, udpNet(f.listen), withUTP)
	if err != nil {
		return nil, err
	}
	var uss utpSockets
	if us4 != nil {
		uss = append(uss, us4)
	}
	more, err := listenPeers(f.peerListen, ln.Addr().(*net.TCPAddr).Port)
	if err != nil {
		ln.Close()
		pc.Close()
		return nil, err
	}
	if l := peerListen6(l6, ln, more, log); l != nil {
		more = append(more, l)
	}
	closeAll := func() {
		ln.Close()
		for _, l := range more {
			l.Close()
		}
	}
	cfg, err := f.config(log)
	if err != nil {
		closeAll()
		pc.Close()
		return nil, err
	}
	cfg.Conn, cfg.Listen6 = pc, ""
	if l6 != "" {
		var us6 *utp.Socket
		if cfg.Conn6, us6, err = listenUDP6UTP(l6, localPort(pc), withUTP); err != nil {
			log.Warn("no IPv6 DHT socket; running on IPv4 alone", zap.String("listen6", l6), zap.Error(err))
		} else if us6 != nil {
			uss = append(uss, us6)
		}
	}
	if len(tg.nodes) > 0 {
		// A trackerless .torrent's own nodes bootstrap the DHT; the public
		// routers are only a fallback the user did not override.
		if bootstrapSet {
			cfg.Bootstrap = append(cfg.Bootstrap, tg.nodes...)
		} else {
			cfg.Bootstrap = tg.nodes
		}
		// The torrent's nodes may be the only way to its swarm (BEP 5:
		// clients should add them): asked even on a warm start.
		cfg.BootstrapFallback = false
	}
	node, err := dht.New(cfg) // owns pc and Conn6, even when it fails
	if err != nil {
		closeAll()
		return nil, err
	}
	go func() {
		if _, err := node.Bootstrap(ctx); err != nil && ctx.Err() == nil {
			log.Warn("DHT bootstrap failed; retrying in the background", zap.Error(err))
		}
	}()
	pcfg := peer.Config{
		InfoHash: tg.ih, Info: tg.info, Dir: dir, Listener: ln, Listeners: more, DHT: node,
		Peers: tg.peers, Logger: log, Encryption: f.encryption,
	}
	uss.configure(&pcfg)
	if mod != nil {
		mod(&pcfg)
	}
	t, err := peer.New(pcfg)
	if err != nil {
		closeAll()
		node.Close()
		return nil, err
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	pm := f.startPortMapping(ln.Addr().(*net.TCPAddr).AddrPort().Addr(), port, node.Addr().Port(), node, announceMapped(t, port), log)
	return &swarm{node: node, t: t, pm: pm}, nil
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
	defer closePortMapping(sw.pm, log)
	if o.seedOnly {
		out.note("verifying " + dir + " and serving until interrupted")
	}
	runErr := make(chan error, 1)
	go func() { runErr <- sw.t.Run(runCtx) }()
	return sw.t, supervise(ctx, sw, out, o, runErr, cancelRun)
}

// superviseOpts are what the subcommand asks supervise to stop on.
type superviseOpts struct {
	timeout  time.Duration
	noSeed   bool // stop once complete
	metaOnly bool // the torrent stops itself once it has metadata
	seedOnly bool // node seed: never downloads, so "complete" is not the goal
	ratio    float64
}

// supervise follows a running torrent: progress, the timeout, seeding
// until the ratio, and Ctrl-C. It returns the command's outcome.
func supervise(ctx context.Context, sw *swarm, out *reporter, o superviseOpts, runErr <-chan error, cancelRun context.CancelFunc) error {
	t := sw.t
	timeout, ratio, stopWhenDone := o.timeout, o.ratio, o.noSeed
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var everPeer, done bool
	// meta and complete are set to nil once handled: a closed channel in
	// a select is always ready, and would spin this loop.
	meta, complete := t.Metadata(), t.Done()
	finish := func(err error) error {
		cancelRun()
		if rerr := <-runErr; err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
			err = exitFor(rerr)
		}
		return err
	}
	for {
		select {
		case err := <-runErr:
			runErr = nil
			out.end()
			if err != nil && !errors.Is(err, context.Canceled) {
				return exitFor(err)
			}
			if o.metaOnly && t.Info() != nil {
				return nil
			}
			select {
			case <-t.Done():
				return nil
			default:
				return exitError{exitFailure, "stopped before the download completed"}
			}
		case <-meta:
			meta = nil
			s, _ := statsNow(t)
			out.metadata(s)
		case <-complete:
			complete = nil
			done = true
			s, _ := statsNow(t)
			out.complete(s)
			if stopWhenDone {
				return finish(nil)
			}
			out.note("seeding; press Ctrl-C to stop")
		case <-tick.C:
			s, err := statsNow(t)
			if err != nil {
				continue
			}
			everPeer = everPeer || s.Peers > 0
			out.portMapping(portMapStatus(sw.pm))
			// A seed reports while peers are connected: its line (or event,
			// with the peer list) shows who takes what, over what.
			if !o.seedOnly || !done || s.Peers > 0 {
				out.progress(s, time.Since(start))
			}
			if timeout > 0 && time.Since(start) > timeout && (!s.HaveInfo || !everPeer) {
				out.end()
				what := "no peers"
				if !s.HaveInfo {
					what = "no metadata"
				}
				return finish(exitError{exitNoPeers, fmt.Sprintf("%s after %v", what, timeout)})
			}
			if done && ratio > 0 && s.Length > 0 && float64(s.Uploaded)/float64(s.Length) >= ratio {
				out.end()
				out.note(fmt.Sprintf("seed ratio %.2f reached", ratio))
				return finish(nil)
			}
		case <-ctx.Done():
			out.end()
			s, _ := statsNow(t)
			if done {
				return finish(nil)
			}
			err := finish(nil)
			if err != nil {
				return err
			}
			return exitError{exitSignal, fmt.Sprintf("interrupted at %d of %d pieces; run the same command again to resume", s.Have, s.Pieces)}
		}
	}
}

func statsNow(t *peer.Torrent) (peer.Stats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return t.Stats(ctx)
}
