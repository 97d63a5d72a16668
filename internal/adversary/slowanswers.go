package adversary

import (
	"errors"
	"sync/atomic"
	"time"

	"node/metadata"
	"node/peer/wire"
)

// Fast extension (BEP 6) peers that answer late or not at all. Each claims
// every piece and unchokes; none serves a block.

// SlowAnswerer counts what a slow fast peer saw and did.
type SlowAnswerer struct {
	// Requests and Cancels count what it received, Rejects what it sent.
	Requests, Cancels, Rejects atomic.Int64
	// Answered is closed once the other side answered the ut_metadata
	// request it sends after its rejects: it took them all in and kept
	// the connection.
	Answered chan struct{}
}

// NewSlowAnswerer returns a SlowAnswerer ready for HoldThenReject.
func NewSlowAnswerer() *SlowAnswerer {
	return &SlowAnswerer{Answered: make(chan struct{})}
}

var errStopped = errors.New("adversary: stopped")

// slowMetaID is the ut_metadata id HoldThenReject takes answers on.
const slowMetaID = 3

// HoldThenReject is an honest but slow fast peer: it holds every request
// for hold from the first, then answers each request it received exactly
// once, with a reject, as BEP 6 asks (a cancel needs no answer of its
// own: the request's answers it), and rejects later requests at once.
// After its rejects it asks for metadata piece 0, and closes Answered when
// the answer comes. It returns the error that ended the connection.
func (s *SlowAnswerer) HoldThenReject(p *Peer, hold time.Duration) error {
	if !p.Theirs.Reserved.Fast() {
		return errNotFast
	}
	if err := p.claimAll(); err != nil {
		return err
	}
	if err := p.SendExtHandshake(wire.ExtendedHandshake{M: map[string]int{wire.ExtMetadataName: slowMetaID}}); err != nil {
		return err
	}
	msgs := make(chan wire.Message, 64)
	errc := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		errc <- p.readEach(func(m wire.Message) error {
			select {
			case msgs <- m:
				return nil
			case <-stop:
				return errStopped
			}
		})
	}()
	var held []wire.Message
	var timer <-chan time.Time
	theirMeta := 0
	released := false
	reject := func(m wire.Message) []byte {
		s.Rejects.Add(1)
		r := wire.Message{Type: wire.RejectRequest, Index: m.Index, Begin: m.Begin, Length: m.Length}
		return r.Append(nil)
	}
	for {
		select {
		case err := <-errc:
			return err
		case <-timer:
			released = true
			var b []byte
			for _, m := range held {
				b = append(b, reject(m)...)
			}
			held = nil
			if theirMeta == 0 {
				return errors.New("adversary: the other side offers no ut_metadata")
			}
			payload, err := metadata.MetadataMsg{Type: 0, Piece: 0}.Append(nil, nil)
			if err != nil {
				return err
			}
			b = (&wire.Message{Type: wire.Extended, ExtendedID: uint8(theirMeta), Payload: payload}).Append(b)
			if err := p.SendRaw(b); err != nil {
				return err
			}
		case m := <-msgs:
			switch {
			case m.Type == wire.Request:
				s.Requests.Add(1)
				if released {
					if err := p.SendRaw(reject(m)); err != nil {
						return err
					}
					continue
				}
				if timer == nil {
					timer = time.After(hold)
				}
				held = append(held, m)
			case m.Type == wire.Cancel:
				s.Cancels.Add(1)
			case m.Type == wire.Extended && m.ExtendedID == 0:
				if h, err := wire.ParseExtendedHandshake(m.Payload); err == nil {
					theirMeta = h.M[wire.ExtMetadataName]
				}
			case m.Type == wire.Extended && m.ExtendedID == slowMetaID && released:
				select {
				case <-s.Answered:
				default:
					close(s.Answered)
				}
			}
		}
	}
}

// HoldRequests claims every piece, unchokes, and answers no request; once
// choke is closed it chokes, still answering nothing, as BEP 6 lets it
// for a while. It reads until hung up on and returns that error.
func HoldRequests(p *Peer, choke <-chan struct{}) error {
	if err := p.claimAll(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- p.Drain() }()
	select {
	case err := <-done:
		return err
	case <-choke:
	}
	if err := p.Send(&wire.Message{Type: wire.Choke}); err != nil {
		return err
	}
	return <-done
}
