package main

import (
	"context"
	"net/netip"
	"os"
	"syscall"
	"time"

	"node/dht"
	"node/internal/bench/benchkit"
	"node/internal/peertest"
)

// ourSeederIP is where node seed listens (TCP for peers, UDP for its DHT
// node), apart from the anacrolix seeders' 127.0.91.1-4.
const ourSeederIP = "127.0.91.11"

// ourSeeder is `node seed` (the -node binary) running as its own process.
type ourSeeder struct {
	*benchkit.Seed
	endLife context.CancelFunc
}

// startOurSeeder starts node seed serving c (a .torrent written to
// torrentPath) from dir, its DHT node bootstrapped from boot, and waits
// until n (one of our DHT nodes) has its announce. The process is stopped
// by stop, or when life runs out (or if this program dies). transport
// are node seed's flags for what carries the data (none: plain TCP).
func startOurSeeder(ctx context.Context, nodeBin, dir, torrentPath string, c *content, boot string, n *dht.Node, life time.Duration, transport ...string) (*ourSeeder, error) {
	b, err := c.mi.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(torrentPath, b, 0o644); err != nil {
		return nil, err
	}
	port, err := benchkit.FreePort(ourSeederIP)
	if err != nil {
		return nil, err
	}
	lctx, endLife := context.WithTimeout(ctx, life)
	sd, err := benchkit.StartSeed(lctx, nodeBin, netip.AddrPortFrom(netip.MustParseAddr(ourSeederIP), port), boot, dir, torrentPath, transport...)
	if err != nil {
		endLife()
		return nil, err
	}
	s := &ourSeeder{Seed: sd, endLife: endLife}
	logf("node seed (pid %d) on %v, verifying %d bytes", s.Cmd.Process.Pid, s.Addr, c.total)

	began := time.Now()
	// Its own verification of the data comes first (a few seconds).
	if err := s.While(ctx, func(wctx context.Context) error {
		_, err := peertest.WaitAnnounced(wctx, n, c.mi.Info.InfoHash, s.Addr, 120*time.Second)
		return err
	}); err != nil {
		s.stop()
		return nil, err
	}
	logf("node seed verified its data and our DHT has its announce after %v", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// stop interrupts the seeder and waits for it (at most about 5 s, then it
// is killed).
func (s *ourSeeder) stop() {
	defer s.endLife()
	if s.Stop(15 * time.Second) {
		logf("node seed (pid %d) stopped: %v", s.Cmd.Process.Pid, s.Cmd.ProcessState)
	} else {
		logf("node seed (pid %d) did not exit", s.Cmd.Process.Pid)
	}
}

// selfCPU is this process's user+sys CPU time so far: with the anacrolix
// seeders in this process, what they use (plus our idle DHT nodes).
func selfCPU() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
}
