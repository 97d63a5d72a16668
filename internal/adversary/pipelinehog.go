package adversary

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"node/peer/wire"
)

// PipelineHog is a seeder that draws a deep request pipeline and then
// sits on it: it advertises Reqq (any value, a huge one included), claims
// every piece, unchokes at once and, every Every, answers all the
// requests it holds with the blocks Read gives, until it has sent Serve
// blocks (negative: no limit); from then on it keeps reading requests and
// answers none. Cancels are honoured (the block is not sent). The counts
// of what it held show how many requests a leecher left with it.
type PipelineHog struct {
	Pieces int
	Reqq   int
	Every  time.Duration
	Serve  int
	// Read returns the block for a request (nil: the request is dropped).
	Read func(index, begin, length uint32) []byte

	served, peak, held, cancels atomic.Int64
}

// Served is how many blocks it has sent.
func (h *PipelineHog) Served() int { return int(h.served.Load()) }

// Peak is the most requests it held unanswered at once.
func (h *PipelineHog) Peak() int { return int(h.peak.Load()) }

// Held is how many requests it holds unanswered now.
func (h *PipelineHog) Held() int { return int(h.held.Load()) }

// Cancels is how many cancels it received for requests it held.
func (h *PipelineHog) Cancels() int { return int(h.cancels.Load()) }

type hogReq struct{ index, begin, length uint32 }

// Run is the script for one connection.
func (h *PipelineHog) Run(p *Peer) error {
	// A negative reqq is what our encoder refuses to write.
	hs := []byte(fmt.Sprintf("d1:mde4:reqqi%de1:v9:adversarye", h.Reqq))
	if err := p.Send(&wire.Message{Type: wire.Extended, ExtendedID: 0, Payload: hs}); err != nil {
		return err
	}
	all := wire.NewBits(h.Pieces)
	for i := range h.Pieces {
		all.Set(i)
	}
	if err := p.Send(&wire.Message{Type: wire.Bitfield, Bitfield: all}); err != nil {
		return err
	}
	if err := p.Send(&wire.Message{Type: wire.Unchoke}); err != nil {
		return err
	}
	var mu sync.Mutex
	var pending []hogReq
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.readEach(func(m wire.Message) error {
			mu.Lock()
			defer mu.Unlock()
			r := hogReq{m.Index, m.Begin, m.Length}
			switch m.Type {
			case wire.Request:
				pending = append(pending, r)
			case wire.Cancel:
				for i, x := range pending {
					if x == r {
						pending = append(pending[:i], pending[i+1:]...)
						h.cancels.Add(1)
						break
					}
				}
			}
			h.held.Store(int64(len(pending)))
			if n := int64(len(pending)); n > h.peak.Load() {
				h.peak.Store(n)
			}
			return nil
		})
	}()
	for pace(h.Every, done) {
		mu.Lock()
		var batch []hogReq
		for len(pending) > 0 && (h.Serve < 0 || h.Served() < h.Serve) {
			batch = append(batch, pending[0])
			pending = pending[1:]
			h.served.Add(1)
		}
		h.held.Store(int64(len(pending)))
		mu.Unlock()
		for _, r := range batch {
			b := h.Read(r.index, r.begin, r.length)
			if b == nil {
				continue
			}
			if err := p.Send(&wire.Message{Type: wire.Piece, Index: r.index, Begin: r.begin, Block: b}); err != nil {
				p.Close()
				<-done
				return err
			}
		}
	}
	return nil
}
