package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"node/dht"
	"node/internal/peertest"
)

const maxSeeders = 4

// seederIP is the loopback address of seeder i (from 0).
func seederIP(i int) string { return fmt.Sprintf("127.0.91.%d", i+1) }

// seederPool is the anacrolix seeders, one client per loopback IP, all
// serving from the one source directory, started as scenarios need them.
type seederPool struct {
	dir  string
	boot []netip.AddrPort
	node *dht.Node // looks their announces up in our DHT
	cls  []*torrent.Client
	has  []map[metainfo.Hash]bool
}

// ensure makes seeders 0..n-1 serve c: it starts the missing clients,
// adds c to those without it, waits until they have verified every byte
// (concurrently), then until our DHT has each one's announce. It returns
// their addresses.
func (p *seederPool) ensure(ctx context.Context, n int, c *content) ([]netip.AddrPort, error) {
	if n > maxSeeders {
		return nil, fmt.Errorf("at most %d seeders", maxSeeders)
	}
	ih := c.ami.HashInfoBytes()
	var added []*torrent.Torrent
	for i := range n {
		if i == len(p.cls) {
			cl, err := newAnacrolixClient(seederIP(i), p.dir, true, p.boot, nil)
			if err != nil {
				return nil, fmt.Errorf("seeder %d: %w", i+1, err)
			}
			p.cls = append(p.cls, cl)
			p.has = append(p.has, map[metainfo.Hash]bool{})
		}
		if p.has[i][ih] {
			continue
		}
		t, err := p.cls[i].AddTorrent(c.ami)
		if err != nil {
			return nil, fmt.Errorf("seeder %d: %w", i+1, err)
		}
		p.has[i][ih] = true
		added = append(added, t)
	}
	began := time.Now()
	vctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	errs := make([]error, len(added))
	var wg sync.WaitGroup
	for i, t := range added {
		wg.Go(func() {
			errs[i] = t.VerifyDataContext(vctx)
			if errs[i] == nil {
				errs[i] = waitComplete(vctx, t)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("seeders verifying their data: %w", err)
	}
	if len(added) > 0 {
		logf("%d seeder(s) verified all %d bytes in %v", len(added), c.total, time.Since(began).Round(time.Millisecond))
	}
	var addrs []netip.AddrPort
	for i := range n {
		a := netip.AddrPortFrom(netip.MustParseAddr(seederIP(i)), uint16(p.cls[i].LocalPort()))
		if _, err := peertest.WaitAnnounced(ctx, p.node, [20]byte(ih), a, 60*time.Second); err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	logf("our DHT has the announces of %v", addrs)
	return addrs, nil
}

func (p *seederPool) close() {
	for _, cl := range p.cls {
		cl.Close()
	}
	for _, cl := range p.cls {
		select {
		case <-cl.Closed():
		case <-time.After(5 * time.Second):
		}
	}
}
