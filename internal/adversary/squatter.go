package adversary

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"node/peer/wire"
)

// squatKeepAliveEvery is how often a squatter's connection sends a keep-alive:
// often enough that no read timeout ever drops it.
const squatKeepAliveEvery = 30 * time.Second

// squatRetry is how long a reconnecting squatter waits after its
// connection fails or is closed, so a refusal loop does not spin.
const squatRetry = 250 * time.Millisecond

// Squatter holds connection slots: each of its connections handshakes,
// with a peer ID of its own, and then sends only keep-alives and reads
// whatever comes. It is the peer that gives nothing and takes a slot.
type Squatter struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   int
	made   int
}

// Squat opens perIP connections from each of the local addresses (on
// 127.0.0.0/8) to addr, for info-hash ih, in parallel, and returns once
// each has handshaken or failed. With reconnect, a connection that fails
// or is closed is opened again (after a short pause) until Close, as a
// determined squatter would.
func Squat(addr netip.AddrPort, ih [20]byte, locals []netip.Addr, perIP int, reconnect bool) *Squatter {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Squatter{ctx: ctx, cancel: cancel}
	var first sync.WaitGroup
	for _, local := range locals {
		for range perIP {
			first.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.hold(addr, ih, local, reconnect, first.Done)
			}()
		}
	}
	first.Wait()
	return s
}

// hold runs one connection slot: connect, keep alive, and reconnect if
// asked. tried is called once, after the first attempt's handshake.
func (s *Squatter) hold(addr netip.AddrPort, ih [20]byte, local netip.Addr, reconnect bool, tried func()) {
	once := sync.OnceFunc(tried)
	defer once()
	for s.ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		p, err := DialPeer(dctx, local, addr, ih, RandomID())
		cancel()
		once()
		if err == nil {
			s.mu.Lock()
			s.open++
			s.made++
			s.mu.Unlock()
			stop := context.AfterFunc(s.ctx, func() { p.Close() })
			gone := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				t := time.NewTicker(squatKeepAliveEvery)
				defer t.Stop()
				for {
					select {
					case <-t.C:
						if p.Send(&wire.Message{KeepAlive: true}) != nil {
							return
						}
					case <-gone:
						return
					}
				}
			}()
			_ = p.Drain()
			close(gone)
			<-done
			p.Close()
			stop()
			s.mu.Lock()
			s.open--
			s.mu.Unlock()
		}
		if !reconnect {
			return
		}
		select {
		case <-time.After(squatRetry):
		case <-s.ctx.Done():
		}
	}
}

// Open is how many of its connections are open now (handshaken and not
// yet closed by the other side).
func (s *Squatter) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Made is how many connections completed the handshake in all.
func (s *Squatter) Made() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.made
}

// Close closes every connection and stops reconnecting.
func (s *Squatter) Close() {
	s.cancel()
	s.wg.Wait()
}
