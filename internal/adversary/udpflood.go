package adversary

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"node/krpc"
	"node/routing"
)

// A UDP flood from many source addresses at once, the attack a node on a
// public address must shrug off: garbage and queries as fast as the
// sources can send them. A Pinger beside it, a well-behaved node querying
// at the rate a source is allowed, shows whether the target still serves
// the honest.

// FloodSources binds count UDP sockets, source i on
// 127.<b>.<i/250>.<i%250+1>, so that a limit per IP sees count sources.
// On an error it closes those it bound.
func FloodSources(b byte, count int) ([]*net.UDPConn, error) {
	conns := make([]*net.UDPConn, 0, count)
	for i := range count {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, b, byte(i/250), byte(i%250+1))})
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// Malformed is garbage of several kinds: plain text, random bytes, deep
// nesting, a query whose ID is a byte short and a truncated reply. The
// last two are recognisable as KRPC, so the query earns error 203.
func Malformed(rng *rand.Rand) [][]byte {
	junk := make([]byte, 120)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	id19 := strings.Repeat("x", 19)
	return [][]byte{
		[]byte("hello"),
		junk,
		[]byte("d1:t2:aa1:y1:q1:z" + strings.Repeat("l", 50) + strings.Repeat("e", 50) + "e"),
		[]byte("d1:ad2:id19:" + id19 + "e1:q4:ping1:t2:aa1:y1:qe"),
		[]byte("d1:rd2:id20:" + id19 + "xe1:t2:zz1:y1:re")[:30],
	}
}

// UDPFlood sends rounds datagrams from every source to to, packet(i, j)
// being source i's j-th, until done or ctx ends. Each of workers
// goroutines cycles through its share of the sources, so that all are
// active at once; more workers than half the CPUs would starve a target
// on the same machine, and a test would measure the kernel dropping
// datagrams at its full socket buffer rather than the target's defences.
// It returns how many datagrams went out and how many sends failed.
func UDPFlood(ctx context.Context, sources []*net.UDPConn, to netip.AddrPort, rounds, workers int, packet func(i, j int) []byte) (sent, errs uint64) {
	var nSent, nErrs atomic.Uint64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := range rounds {
				for i := w; i < len(sources); i += workers {
					if ctx.Err() != nil {
						return
					}
					if _, err := sources[i].WriteToUDPAddrPort(packet(i, j), to); err != nil {
						nErrs.Add(1)
						continue
					}
					nSent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return nSent.Load(), nErrs.Load()
}

// Ping is one query of a Pinger: when it was sent and whether it was
// answered.
type Ping struct {
	At time.Time
	OK bool
}

// Pinger is a well-behaved node that pings a target at a steady rate
// through its own Transport, each ping in its own goroutine, so that a
// slow answer does not delay the next.
type Pinger struct {
	Start time.Time // when the first tick was set
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	pings []Ping
}

// StartPinger pings to as id through tr every every until Stop.
func StartPinger(ctx context.Context, tr *krpc.Transport, to netip.AddrPort, id routing.ID, every time.Duration) *Pinger {
	p := &Pinger{stop: make(chan struct{})}
	p.wg.Go(func() {
		var qwg sync.WaitGroup
		defer qwg.Wait()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			qwg.Go(func() {
				at := time.Now()
				_, err := tr.Query(ctx, to, krpc.MethodPing, &krpc.Args{ID: id})
				p.mu.Lock()
				p.pings = append(p.pings, Ping{at, err == nil})
				p.mu.Unlock()
			})
		}
	})
	p.Start = time.Now()
	return p
}

// Stop stops pinging, waits for the pings in flight and returns them all.
func (p *Pinger) Stop() []Ping {
	close(p.stop)
	p.wg.Wait()
	return p.pings
}

// PingTally counts pings, all and those sent in a window.
type PingTally struct {
	Total, Answered         int
	InWindow, AnsweredInWin int
}

// TallyPings counts pings, and those sent in [from, to).
func TallyPings(pings []Ping, from, to time.Time) PingTally {
	var c PingTally
	for _, p := range pings {
		in := !p.At.Before(from) && p.At.Before(to)
		c.Total++
		if in {
			c.InWindow++
		}
		if p.OK {
			c.Answered++
			if in {
				c.AnsweredInWin++
			}
		}
	}
	return c
}
