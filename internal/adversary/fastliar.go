package adversary

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"node/peer/wire"
)

// Fast extension (BEP 6) liars. Each one speaks to a peer that set the
// Fast bit, from a Peer whose own handshake set it (ServeFastPeers), except
// FastWithoutBit, which sends BEP 6 messages from a plain handshake. None
// of them serves a block: they are fetched around, and the test's honest
// seeder delivers the torrent.

// FastLiar counts what a liar did, for the test to check it happened.
type FastLiar struct {
	// Requests counts the block requests it received, Rejects the
	// rejects it sent.
	Requests, Rejects atomic.Int64
	// Choked is closed once ChokeThenReject has choked.
	Choked chan struct{}

	mu     sync.Mutex
	pieces map[uint32]bool
}

// NewFastLiar returns a FastLiar ready for any of its behaviours.
func NewFastLiar() *FastLiar {
	return &FastLiar{Choked: make(chan struct{}), pieces: make(map[uint32]bool)}
}

// Pieces are the pieces it was asked for blocks of, in order.
func (f *FastLiar) Pieces() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint32
	for p := range f.pieces {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (f *FastLiar) asked(m wire.Message) {
	f.Requests.Add(1)
	f.mu.Lock()
	f.pieces[m.Index] = true
	f.mu.Unlock()
}

// ChokeThenReject claims every piece and unchokes; once it holds want
// requests it chokes without rejecting them, as BEP 6 lets a fast peer,
// and closes Choked. When release closes it rejects them all, and from
// then on rejects every request.
func (f *FastLiar) ChokeThenReject(p *Peer, want int, release <-chan struct{}) error {
	if !p.Theirs.Reserved.Fast() {
		return errNotFast
	}
	if err := p.claimAll(); err != nil {
		return err
	}
	var held []wire.Message
	for len(held) < want {
		m, err := p.ReadMsg()
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue
		}
		if err != nil {
			return err
		}
		if m.Type == wire.Request {
			f.asked(m)
			held = append(held, m)
		}
	}
	if err := p.Send(&wire.Message{Type: wire.Choke}); err != nil {
		return err
	}
	close(f.Choked)
	// Read on meanwhile, so the other side is never blocked writing.
	var more []wire.Message
	var mu sync.Mutex
	done := make(chan error, 1)
	go func() {
		done <- p.readEach(func(m wire.Message) error {
			if m.Type == wire.Request {
				f.asked(m)
				mu.Lock()
				more = append(more, m)
				mu.Unlock()
			}
			return nil
		})
	}()
	select {
	case <-release:
	case err := <-done:
		return err
	}
	mu.Lock()
	held = append(held, more...)
	more = nil
	mu.Unlock()
	for _, m := range held {
		f.Rejects.Add(1)
		if err := p.Send(&wire.Message{Type: wire.RejectRequest, Index: m.Index, Begin: m.Begin, Length: m.Length}); err != nil {
			return err
		}
	}
	return <-done
}

var errNotFast = errors.New("adversary: the other side did not set the Fast extension bit")

// claimAll sends have all and an unchoke: it looks like a seeder that
// serves.
func (p *Peer) claimAll() error {
	if err := p.Send(&wire.Message{Type: wire.HaveAll}); err != nil {
		return err
	}
	return p.Send(&wire.Message{Type: wire.Unchoke})
}

// RejectAll claims every piece, unchokes, and rejects every request it
// gets, as soon as it gets it: a peer that never serves, but answers.
func (f *FastLiar) RejectAll(p *Peer) error {
	if !p.Theirs.Reserved.Fast() {
		return errNotFast
	}
	if err := p.claimAll(); err != nil {
		return err
	}
	return p.readEach(func(m wire.Message) error {
		if m.Type != wire.Request {
			return nil
		}
		f.asked(m)
		f.Rejects.Add(1)
		return p.Send(&wire.Message{Type: wire.RejectRequest, Index: m.Index, Begin: m.Begin, Length: m.Length})
	})
}

// RejectUnrequested claims every piece, unchokes, and on the first
// request rejects n blocks it was never asked for (at offsets 1..n bytes
// past the requested block's start, where no block starts), and then the
// request itself.
func (f *FastLiar) RejectUnrequested(p *Peer, n int) error {
	if !p.Theirs.Reserved.Fast() {
		return errNotFast
	}
	if err := p.claimAll(); err != nil {
		return err
	}
	sent := false
	return p.readEach(func(m wire.Message) error {
		if m.Type != wire.Request {
			return nil
		}
		f.asked(m)
		if !sent {
			sent = true
			for i := 1; i <= n; i++ {
				f.Rejects.Add(1)
				err := p.Send(&wire.Message{Type: wire.RejectRequest, Index: m.Index, Begin: m.Begin + uint32(i), Length: m.Length})
				if err != nil {
					return err
				}
			}
		}
		f.Rejects.Add(1)
		return p.Send(&wire.Message{Type: wire.RejectRequest, Index: m.Index, Begin: m.Begin, Length: m.Length})
	})
}

// FloodAdvice claims every piece, keeps us choked, and sends n suggest
// piece and n allowed fast messages, cycling over the pieces from
// first, before reading (and rejecting) whatever comes. Pieces it allows
// are rejected when asked for, as a peer short of resources may.
func (f *FastLiar) FloodAdvice(p *Peer, numPieces, first, n int) error {
	if !p.Theirs.Reserved.Fast() {
		return errNotFast
	}
	if err := p.Send(&wire.Message{Type: wire.HaveAll}); err != nil {
		return err
	}
	b := make([]byte, 0, 2*9*min(n, 1<<12))
	for i := range n {
		piece := uint32((first + i) % max(numPieces, 1))
		b = (&wire.Message{Type: wire.SuggestPiece, Index: piece}).Append(b)
		b = (&wire.Message{Type: wire.AllowedFast, Index: piece}).Append(b)
		if len(b) >= cap(b)-18 || i == n-1 {
			if err := p.SendRaw(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	return f.rejectRequests(p)
}

// AllowOutOfRange claims every piece, keeps us choked, and allows fast
// and suggests the given pieces (meant to be beyond the torrent), then
// rejects whatever it is asked.
func (f *FastLiar) AllowOutOfRange(p *Peer, pieces []uint32) error {
	if !p.Theirs.Reserved.Fast() {
		return errNotFast
	}
	if err := p.Send(&wire.Message{Type: wire.HaveAll}); err != nil {
		return err
	}
	for _, i := range pieces {
		if err := p.Send(&wire.Message{Type: wire.AllowedFast, Index: i}); err != nil {
			return err
		}
		if err := p.Send(&wire.Message{Type: wire.SuggestPiece, Index: i}); err != nil {
			return err
		}
	}
	return f.rejectRequests(p)
}

func (f *FastLiar) rejectRequests(p *Peer) error {
	return p.readEach(func(m wire.Message) error {
		if m.Type != wire.Request {
			return nil
		}
		f.asked(m)
		f.Rejects.Add(1)
		return p.Send(&wire.Message{Type: wire.RejectRequest, Index: m.Index, Begin: m.Begin, Length: m.Length})
	})
}

// HaveTwice sends have all and then second (have all, have none, or a
// bitfield of numPieces set bits): two answers to the one question BEP 3
// and BEP 6 let a peer answer once. Then it reads until hung up on.
func (f *FastLiar) HaveTwice(p *Peer, second wire.MessageType, numPieces int) error {
	if err := p.Send(&wire.Message{Type: wire.HaveAll}); err != nil {
		return err
	}
	m := &wire.Message{Type: second}
	if second == wire.Bitfield {
		m.Bitfield = wire.NewBits(numPieces)
	}
	if err := p.Send(m); err != nil {
		return err
	}
	return p.Drain()
}

// FastWithoutBit sends one BEP 6 message of type which from a handshake
// without the Fast bit (serve it with ServePeers): a message the other
// side must not accept from it. Then it reads until hung up on.
func (f *FastLiar) FastWithoutBit(p *Peer, which wire.MessageType) error {
	m := &wire.Message{Type: which, Length: wire.BlockSize}
	if err := p.Send(m); err != nil {
		return err
	}
	return p.Drain()
}
