package adversary

import (
	"sync"
	"time"

	"node/metadata"
	"node/peer/wire"
)

// Misbehaviours around the one-peer-at-a-time turn a BEP 9 fetch takes
// after an assembly that failed its hash: a liar that, once it has the
// turn, tries to keep it by renewing its requests with repeated BEP 10
// handshakes, or by taking ut_metadata back so that it is never asked
// again and so never seen to stall.

// WithdrawHandshake is a BEP 10 handshake that takes ut_metadata back
// (m: {ut_metadata: 0}) while still claiming size.
func WithdrawHandshake(size int) wire.ExtendedHandshake {
	return wire.ExtendedHandshake{M: map[string]int{wire.ExtMetadataName: 0}, MetadataSize: size}
}

// MetadataRequests reads until n ut_metadata requests have come, within
// d, and returns the pieces asked for. Meanwhile, if every is not zero,
// it sends renew again at that interval: a peer that renews its handshake
// to be asked again. theirID is the other side's ut_metadata ID if its
// BEP 10 handshake came in the meantime, else the one passed in.
func (p *Peer) MetadataRequests(n int, d time.Duration, theirID int, renew wire.ExtendedHandshake, every time.Duration) (id int, pieces []int, err error) {
	if every > 0 {
		defer p.RenewHandshake(renew, every)()
	}
	id = theirID
	err = p.ReadUntil(d, func(m wire.Message) bool {
		if m.Type != wire.Extended {
			return false
		}
		if m.ExtendedID == 0 {
			if h, err := wire.ParseExtendedHandshake(m.Payload); err == nil {
				id = h.M[wire.ExtMetadataName]
			}
			return false
		}
		mm, _, err := metadata.ParseMetadataMsg(m.Payload)
		if m.ExtendedID != MetaID || err != nil || mm.Type != metadata.MetadataRequest {
			return false
		}
		pieces = append(pieces, mm.Piece)
		return len(pieces) >= n
	})
	return id, pieces, err
}

// RenewHandshake sends h again every interval, in the background, until
// the returned stop is called (it waits for the sender to end) or the
// connection fails: a peer that renews its claim to be asked again.
func (p *Peer) RenewHandshake(h wire.ExtendedHandshake, every time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				if p.SendExtHandshake(h) != nil {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		wg.Wait()
	}
}

// SendJunk answers each of pieces with zeros of the right length for
// metadata of size bytes, to the other side's ut_metadata ID id.
func (p *Peer) SendJunk(id, size int, pieces ...int) error {
	for _, piece := range pieces {
		if err := p.Send(&wire.Message{Type: wire.Extended, ExtendedID: uint8(id), Payload: JunkMetadata(size)(piece)}); err != nil {
			return err
		}
	}
	return nil
}
