// Command anacrolixpeers is coldbench's anacrolix side: anacrolix/dht/v2's
// own get_peers lookup from a cold start, the counterpart of `node peers
// --state-dir=`. It starts a dht.Server with no saved state on -listen,
// reaching only the -bootstrap addresses (dhttest.Configure: the public
// routers off, BEP 42 off for 127.x, no global send limiter), runs its
// get_peers traversal for the info-hash at once from those addresses, with
// a bootstrap beside it as anacrolix/torrent's table maintainer would
// start, and prints each peer on stdout as it arrives, until the traversal
// ends or -timeout.
//
//	anacrolixpeers -listen 127.0.0.1:0 -bootstrap 127.1.0.1:6881,127.1.0.2:6881 <hex info-hash>
//
// The server is passive (BEP 43 read-only, answering nothing), as node
// peers is: the servers it asks keep it out of their tables, so one run
// leaves nothing for the next to trip over.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/internal/dhttest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "anacrolixpeers:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "UDP `address` to listen on")
	boot := flag.String("bootstrap", "", "comma-separated `host:port` list of loopback DHT nodes to start from")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	if flag.NArg() != 1 {
		return errors.New("want one hex info-hash")
	}
	b, err := hex.DecodeString(flag.Arg(0))
	if err != nil || len(b) != 20 {
		return fmt.Errorf("info-hash %q: want 40 hex digits", flag.Arg(0))
	}
	ih := [20]byte(b)
	var boots []netip.AddrPort
	for s := range strings.SplitSeq(*boot, ",") {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return fmt.Errorf("-bootstrap: %w", err)
		}
		if !ap.Addr().IsLoopback() {
			return fmt.Errorf("-bootstrap %v: not a loopback address", ap)
		}
		boots = append(boots, ap)
	}
	pc, err := net.ListenPacket("udp4", *listen)
	if err != nil {
		return err
	}
	cfg := adht.NewDefaultServerConfig()
	cfg.Conn = pc
	dhttest.Configure(cfg, func() []netip.AddrPort { return boots })
	cfg.Passive = true
	s, err := adht.NewServer(cfg)
	if err != nil {
		return err
	}
	defer s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	go func() { _, _ = s.BootstrapContext(ctx) }()
	a, err := s.AnnounceTraversal(ih)
	if err != nil {
		return err
	}
	defer a.Close()
	stop := context.AfterFunc(ctx, a.Close)
	defer stop()
	seen := map[netip.AddrPort]bool{}
	for pv := range a.Peers {
		for _, p := range pv.Peers {
			ip, _ := netip.AddrFromSlice(p.IP)
			ap := netip.AddrPortFrom(ip.Unmap(), uint16(p.Port))
			if !seen[ap] {
				seen[ap] = true
				fmt.Println(ap)
			}
		}
	}
	<-a.Finished()
	fmt.Fprintf(os.Stderr, "%d peers, %d addresses tried\n", len(seen), a.TraversalStats().NumAddrsTried)
	return ctx.Err()
}
