package adversary

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"node/metadata"
	"node/peer/wire"
)

// Peer behaviours: each is the whole script of one hostile connection,
// for ServePeers (wrap it in a closure) or for a dialled Peer. Each
// returns when its attack is over or the connection fails, which is how
// Server.Close ends them; none needs more than the Peer and its figures.

// MetadataExtID is the extended message ID on which adversaries ask to
// receive ut_metadata.
const MetadataExtID = 3

// metadataHandshake is an extended handshake offering ut_metadata with a
// claimed info dictionary size (0: none claimed).
func metadataHandshake(size int) wire.ExtendedHandshake {
	return wire.ExtendedHandshake{M: map[string]int{wire.ExtMetadataName: MetadataExtID}, MetadataSize: size, V: "adversary"}
}

// theirMetadataID is the ut_metadata ID from an extended handshake
// message, if m is one that offers it.
func theirMetadataID(m wire.Message) (int, bool) {
	if m.Type != wire.Extended || m.ExtendedID != 0 {
		return 0, false
	}
	h, err := wire.ParseExtendedHandshake(m.Payload)
	if err != nil || h.M[wire.ExtMetadataName] == 0 {
		return 0, false
	}
	return h.M[wire.ExtMetadataName], true
}

// metadataMsg parses m as a ut_metadata message sent to us.
func metadataMsg(m wire.Message) (metadata.MetadataMsg, bool) {
	if m.Type != wire.Extended || m.ExtendedID != MetadataExtID {
		return metadata.MetadataMsg{}, false
	}
	mm, _, err := metadata.ParseMetadataMsg(m.Payload)
	return mm, err == nil
}

// sendExt sends an extended message on the other side's ID.
func (p *Peer) sendExt(id int, payload []byte) error {
	return p.Send(&wire.Message{Type: wire.Extended, ExtendedID: uint8(id), Payload: payload})
}

// readEach reads messages until the connection fails, passing each to f
// (unknown message types are skipped); an error from f ends it too.
func (p *Peer) readEach(f func(wire.Message) error) error {
	for {
		m, err := p.ReadMsg()
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue
		}
		if err != nil {
			return err
		}
		if err := f(m); err != nil {
			return err
		}
	}
}

// drain reads and discards in the background; the channel is closed once
// the connection has failed.
func (p *Peer) drain() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Drain()
	}()
	return done
}

// pace waits d, or less if done closes first (then false).
func pace(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// LieAboutMetadataSize claims size as the info dictionary's size and
// rejects every ut_metadata request: a liar that no data can ever prove
// right.
func LieAboutMetadataSize(p *Peer, size int) error {
	if err := p.SendExtHandshake(metadataHandshake(size)); err != nil {
		return err
	}
	theirs := 0
	return p.readEach(func(m wire.Message) error {
		if id, ok := theirMetadataID(m); ok {
			theirs = id
			return nil
		}
		if mm, ok := metadataMsg(m); ok && mm.Type == metadata.MetadataRequest && theirs != 0 {
			b, _ := metadata.MetadataMsg{Type: metadata.MetadataReject, Piece: mm.Piece}.Append(nil, nil)
			return p.sendExt(theirs, b)
		}
		return nil
	})
}

// SendUnrequestedMetadata claims the true size, then sends count
// ut_metadata data messages of random bytes, piece after piece, one every
// every, that nobody asked for, and rejects the requests it gets (finding
// 2). It returns once the connection fails.
func SendUnrequestedMetadata(p *Peer, size, count int, every time.Duration) error {
	if err := p.SendExtHandshake(metadataHandshake(size)); err != nil {
		return err
	}
	ids := make(chan int, 1)
	var wmu sync.Mutex // the reader's rejects and the junk interleave whole
	done := make(chan struct{})
	go func() {
		defer close(done)
		theirs := 0
		_ = p.readEach(func(m wire.Message) error {
			if id, ok := theirMetadataID(m); ok && theirs == 0 {
				theirs = id
				ids <- id
				return nil
			}
			if mm, ok := metadataMsg(m); ok && mm.Type == metadata.MetadataRequest && theirs != 0 {
				b, _ := metadata.MetadataMsg{Type: metadata.MetadataReject, Piece: mm.Piece}.Append(nil, nil)
				wmu.Lock()
				defer wmu.Unlock()
				return p.sendExt(theirs, b)
			}
			return nil
		})
	}()
	var theirs int
	select {
	case theirs = <-ids:
	case <-done:
		return nil
	}
	pieces := max(1, (size+metadata.MetadataPieceSize-1)/metadata.MetadataPieceSize)
	for i := range count {
		piece := i % pieces
		n := min(metadata.MetadataPieceSize, size-piece*metadata.MetadataPieceSize)
		junk := make([]byte, max(n, 1))
		_, _ = rand.Read(junk)
		b, err := metadata.MetadataMsg{Type: metadata.MetadataData, Piece: piece, TotalSize: size}.Append(nil, junk)
		if err != nil {
			return err
		}
		wmu.Lock()
		err = p.sendExt(theirs, b)
		wmu.Unlock()
		if err != nil || !pace(every, done) {
			return err
		}
	}
	<-done
	return nil
}

// SendCorruptPieces serves info's metadata honestly, claims every piece,
// unchokes at once and answers every block request with random bytes: its
// pieces fail their hash.
func SendCorruptPieces(p *Peer, info *metadata.Info) error {
	if err := p.SendExtHandshake(metadataHandshake(len(info.Raw))); err != nil {
		return err
	}
	all := wire.NewBits(info.NumPieces())
	for i := range info.NumPieces() {
		all.Set(i)
	}
	if err := p.Send(&wire.Message{Type: wire.Bitfield, Bitfield: all}); err != nil {
		return err
	}
	if err := p.Send(&wire.Message{Type: wire.Unchoke}); err != nil {
		return err
	}
	theirs := 0
	return p.readEach(func(m wire.Message) error {
		if id, ok := theirMetadataID(m); ok {
			theirs = id
			return nil
		}
		if mm, ok := metadataMsg(m); ok && mm.Type == metadata.MetadataRequest && theirs != 0 {
			return p.sendExt(theirs, metadata.ServeMetadata(info.Raw, mm.Piece))
		}
		if m.Type == wire.Request && m.Length > 0 && m.Length <= wire.MaxRequestLen {
			junk := make([]byte, m.Length)
			_, _ = rand.Read(junk)
			return p.Send(&wire.Message{Type: wire.Piece, Index: m.Index, Begin: m.Begin, Block: junk})
		}
		return nil
	})
}

// SquatKeepAlive holds a connection slot and gives nothing: an extended
// handshake without metadata, then a keep-alive every every, reading
// (and ignoring) whatever comes, until the connection fails.
func SquatKeepAlive(p *Peer, every time.Duration) error {
	if err := p.SendExtHandshake(wire.ExtendedHandshake{M: map[string]int{}, V: "adversary"}); err != nil {
		return err
	}
	done := p.drain()
	for pace(every, done) {
		if err := p.Send(&wire.Message{KeepAlive: true}); err != nil {
			return err
		}
	}
	return nil
}

// SquatSlots dials target n times at once from local (an address on
// 127.0.0.0/8), each time with a new peer ID, and holds every connection
// that completes its handshake (within 10 s) with SquatKeepAlive until
// ctx ends: one IP posing as n peers. It returns how many
// handshakes completed, once every connection is closed.
func SquatSlots(ctx context.Context, local netip.Addr, target netip.AddrPort, ih [20]byte, n int, every time.Duration) int {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []*Peer
	)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := DialPeer(dctx, local, target, ih, RandomID())
			if err != nil {
				return
			}
			mu.Lock()
			if ctx.Err() != nil {
				mu.Unlock()
				p.Close()
				return
			}
			conns = append(conns, p)
			mu.Unlock()
			_ = SquatKeepAlive(p, every)
		}()
	}
	<-ctx.Done()
	mu.Lock()
	for _, p := range conns {
		p.Close()
	}
	held := len(conns)
	mu.Unlock()
	wg.Wait()
	return held
}

// NeverRead offers metadata of size bytes, reads only until the other
// side's extended handshake, then asks for the metadata metaRequests
// times and for every block of info (if known) and never reads again:
// whatever is answered must queue on the other side. It sends
// a keep-alive every every until a write fails.
func NeverRead(p *Peer, info *metadata.Info, metaRequests int, every time.Duration) error {
	if tc, ok := p.Conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10) // back up the other side's writes sooner
	}
	if err := p.SendExtHandshake(metadataHandshake(len(info.Raw))); err != nil {
		return err
	}
	theirs := 0
	err := p.ReadUntil(30*time.Second, func(m wire.Message) bool {
		id, ok := theirMetadataID(m)
		theirs = id
		return ok
	})
	if err != nil {
		return err
	}
	if err := p.Send(&wire.Message{Type: wire.Interested}); err != nil {
		return err
	}
	pieces := (len(info.Raw) + metadata.MetadataPieceSize - 1) / metadata.MetadataPieceSize
	var buf []byte
	for i := range metaRequests {
		b, _ := metadata.MetadataMsg{Type: metadata.MetadataRequest, Piece: i % pieces}.Append(nil, nil)
		buf = (&wire.Message{Type: wire.Extended, ExtendedID: uint8(theirs), Payload: b}).Append(buf)
	}
	for i := range info.NumPieces() {
		for off := int64(0); off < info.PieceSize(i); off += wire.BlockSize {
			buf = (&wire.Message{Type: wire.Request, Index: uint32(i), Begin: uint32(off),
				Length: uint32(min(wire.BlockSize, info.PieceSize(i)-off))}).Append(buf)
		}
	}
	if err := p.SendRaw(buf); err != nil {
		return err
	}
	for {
		time.Sleep(every) // nothing to wait for: this peer never reads
		if err := p.Send(&wire.Message{KeepAlive: true}); err != nil {
			return err
		}
	}
}

// FloodPort sends total BEP 5 port messages with random ports, perWrite
// at a time, one write every every, reading and ignoring what comes
// (each one a DHT ping, if the other side is naive). It returns when
// all are sent or the connection fails.
func FloodPort(p *Peer, total, perWrite int, every time.Duration) error {
	if err := p.SendExtHandshake(wire.ExtendedHandshake{M: map[string]int{}, V: "adversary"}); err != nil {
		return err
	}
	done := p.drain()
	var rnd [2]byte
	for sent := 0; sent < total; {
		var buf []byte
		for range min(perWrite, total-sent) {
			_, _ = rand.Read(rnd[:])
			buf = (&wire.Message{Type: wire.Port, Port: max(1, binary.BigEndian.Uint16(rnd[:]))}).Append(buf)
			sent++
		}
		if err := p.SendRaw(buf); err != nil {
			return err
		}
		if !pace(every, done) {
			return nil
		}
	}
	return nil
}

// StreamBitfields sends total bitfield messages of size random bytes as
// fast as the other side reads them, reading and ignoring what comes: a
// 64 KiB bitfield is the largest a magnet fetch accepts before it knows
// the piece count.
func StreamBitfields(p *Peer, size, total int) error {
	if err := p.SendExtHandshake(wire.ExtendedHandshake{M: map[string]int{}, V: "adversary"}); err != nil {
		return err
	}
	done := p.drain()
	bf := make([]byte, size)
	_, _ = rand.Read(bf)
	msg := (&wire.Message{Type: wire.Bitfield, Bitfield: bf}).Append(nil)
	for range total {
		if err := p.SendRaw(msg); err != nil {
			return err
		}
	}
	<-done
	return nil
}

// UnknownMessageType is the message ID StreamOversized sends: no BEP
// defines it, so a receiver must skip it, not fail.
const UnknownMessageType = 0x77

// StreamOversized announces a message of claim bytes (of an unknown type)
// and then sends its body chunk bytes at a time, one chunk every every:
// above the receiver's cap the connection should end at the length
// prefix; below it, the receiver holds a buffer for a slow sender. It
// returns when the body is sent or the connection fails.
func StreamOversized(p *Peer, claim uint32, chunk int, every time.Duration) error {
	if err := p.SendExtHandshake(wire.ExtendedHandshake{M: map[string]int{}, V: "adversary"}); err != nil {
		return err
	}
	done := p.drain()
	hdr := binary.BigEndian.AppendUint32(nil, claim)
	if err := p.SendRaw(append(hdr, UnknownMessageType)); err != nil {
		return err
	}
	body := make([]byte, chunk)
	for left := int64(claim) - 1; left > 0; left -= int64(chunk) {
		if !pace(every, done) {
			return nil
		}
		_, _ = rand.Read(body)
		if err := p.SendRaw(body[:min(int64(chunk), left)]); err != nil {
			return err
		}
	}
	<-done
	return nil
}
