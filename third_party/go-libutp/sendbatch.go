package utp

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Bounds of the send queue. libutp emits its datagrams through the
// sendto callback while it holds the package lock; one system call each
// was most of uTP's cost on loopback. They are queued instead and sent
// together when the lock is released (see libMutex).
const (
	// maxQueuedDatagrams bounds the datagrams queued between two flushes:
	// a call into libutp that emits more (a write into a wide window)
	// sends each full queue at once, so the queue holds at most this
	// many datagrams of at most maxDatagram bytes.
	maxQueuedDatagrams = 64
	// maxDatagram is the largest datagram queued; a larger one (libutp
	// emits none) is sent at once, as before.
	maxDatagram = 2048
	// maxGSOSegments is the most datagrams one UDP GSO send carries
	// (Linux's UDP_MAX_SEGMENTS was 64 before 6.x raised it to 128).
	maxGSOSegments = 64
	// maxGSOBytes is the most bytes one UDP GSO send carries: the largest
	// UDP payload over IPv4.
	maxGSOBytes = 65507
	// maxNoGSOAddrs bounds the addresses a socket remembers not to send
	// to with GSO (their route's MTU is below our datagrams'); past it,
	// the socket stops using GSO at all.
	maxNoGSOAddrs = 256
)

// queuedDatagram is a datagram waiting in a sendQueue: bytes off to
// off+n of its buffer.
type queuedDatagram struct {
	off, n int
	to     netip.AddrPort
	// tag names the libutp socket that sent it, for its send errors; nil
	// once that socket is destroyed.
	tag unsafe.Pointer
}

// sendQueue holds the datagrams libutp emitted while the lock was held.
type sendQueue struct {
	buf []byte
	ds  []queuedDatagram
}

func (q *sendQueue) add(b []byte, to netip.AddrPort, tag unsafe.Pointer) {
	q.ds = append(q.ds, queuedDatagram{off: len(q.buf), n: len(b), to: to, tag: tag})
	q.buf = append(q.buf, b...)
}

func (q *sendQueue) full() bool { return len(q.ds) >= maxQueuedDatagrams }

func (q *sendQueue) reset() {
	q.buf = q.buf[:0]
	q.ds = q.ds[:0]
}

// forget clears tag from the queued datagrams: its socket is gone, and a
// new one may get its address.
func (q *sendQueue) forget(tag unsafe.Pointer) {
	for i := range q.ds {
		if q.ds[i].tag == tag {
			q.ds[i].tag = nil
		}
	}
}

// batchMsg is one message of a batch: datagrams ds[first:end] of the
// queue, contiguous in its buffer, to one address; seg is the segment
// size when it is more than one datagram sent with UDP GSO.
type batchMsg struct {
	first, end int
	seg        int
}

// batchSender is the system's way to send several messages in one call
// (sendmmsg) and to have the kernel cut one into datagrams (UDP GSO).
type batchSender interface {
	// send sends the first messages of ms, stopping at the first that
	// fails, and reports how many it sent and that one's error.
	send(q *sendQueue, ms []batchMsg) (int, error)
}

// Counters of the batched sends, for tests and benchmarks.
var (
	batchDatagrams   atomic.Int64 // datagrams sent through a batch
	batchCalls       atomic.Int64 // send calls those took
	gsoFallbacks     atomic.Int64 // sockets that stopped using GSO
	plainDatagrams   atomic.Int64 // datagrams sent one call each
	sendErrorsQueued atomic.Int64 // queued datagrams whose send failed

	// queueHighWater, if set (by a test), is told the queue's length
	// after each datagram is queued, under the lock.
	queueHighWater func(int)
)

// batchConn sends a sendQueue on one socket.
type batchConn struct {
	pc    net.PacketConn
	batch batchSender // nil: one write each
	gso   bool        // UDP GSO believed to work on this socket
	msgs  []batchMsg
	// noGSO are the addresses GSO sends to failed for their route (see
	// isRouteGSOError), at most maxNoGSOAddrs.
	noGSO map[netip.Addr]struct{}
}

// flush sends q's datagrams in order and calls fail for each that could
// not be sent.
func (b *batchConn) flush(q *sendQueue, fail func(tag unsafe.Pointer, err error)) {
	if len(q.ds) == 0 {
		return
	}
	if b.batch == nil {
		b.plain(q, 0, len(q.ds), fail)
		return
	}
	b.msgs = b.group(q, b.msgs[:0], 0)
	for k := 0; k < len(b.msgs); {
		n, err := b.batch.send(q, b.msgs[k:])
		batchCalls.Add(1)
		if n < 0 {
			// sendmmsg's -1, passed on by x/net with its error.
			n = 0
		}
		for _, m := range b.msgs[k : k+n] {
			batchDatagrams.Add(int64(m.end - m.first))
		}
		k += n
		if err == nil {
			if n == 0 {
				// Not expected of sendmmsg; never spin on it.
				b.plain(q, b.msgs[k].first, len(q.ds), fail)
				return
			}
			continue
		}
		m := b.msgs[k]
		k++
		if m.seg == 0 {
			sendErrorsQueued.Add(int64(m.end - m.first))
			for _, d := range q.ds[m.first:m.end] {
				fail(d.tag, err)
			}
			continue
		}
		// The kernel refused a GSO send. If the same datagrams go out
		// one by one, GSO was at fault: stop using it to this address if
		// its route was (a path MTU below our datagrams', which any peer
		// behind a tunnel has and an ICMP message can set), else on this
		// socket, and send the rest without it. If they fail too, the
		// address was.
		if b.plain(q, m.first, m.end, fail) && isGSOError(err) {
			to := q.ds[m.first].to.Addr()
			if isRouteGSOError(err) && len(b.noGSO) < maxNoGSOAddrs {
				if b.noGSO == nil {
					b.noGSO = make(map[netip.Addr]struct{})
				}
				b.noGSO[to] = struct{}{}
			} else {
				b.gso = false
				gsoFallbacks.Add(1)
			}
			if k < len(b.msgs) {
				rest := b.msgs[k].first
				b.msgs = b.group(q, b.msgs[:0], rest)
				k = 0
			}
		}
	}
}

// plain sends q.ds[i:j] one write each; it reports whether all went.
func (b *batchConn) plain(q *sendQueue, i, j int, fail func(unsafe.Pointer, error)) bool {
	ok := true
	for _, d := range q.ds[i:j] {
		plainDatagrams.Add(1)
		if _, err := b.pc.WriteTo(q.buf[d.off:d.off+d.n], net.UDPAddrFromAddrPort(d.to)); err != nil {
			sendErrorsQueued.Add(1)
			fail(d.tag, err)
			ok = false
		}
	}
	return ok
}

// group cuts q.ds[from:] into messages: with GSO, a run of datagrams to
// one address, all of one size but the last, which may be shorter (the
// kernel's rule), within maxGSOSegments and maxGSOBytes; without it, one
// datagram each.
func (b *batchConn) group(q *sendQueue, ms []batchMsg, from int) []batchMsg {
	ds := q.ds
	for i := from; i < len(ds); {
		j := i + 1
		if _, no := b.noGSO[ds[i].to.Addr()]; b.gso && !no {
			seg, total := ds[i].n, ds[i].n
			for j < len(ds) && j-i < maxGSOSegments && ds[j].to == ds[i].to &&
				ds[j].n <= seg && total+ds[j].n <= maxGSOBytes {
				total += ds[j].n
				j++
				if ds[j-1].n < seg {
					break
				}
			}
		}
		m := batchMsg{first: i, end: j}
		if j-i > 1 {
			m.seg = ds[i].n
		}
		ms = append(ms, m)
		i = j
	}
	return ms
}

// isRouteGSOError reports whether err, from a GSO send, is the kernel's
// for a segment larger than the route's MTU allows (EINVAL; EMSGSIZE),
// which holds for that destination only.
func isRouteGSOError(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EMSGSIZE)
}

// isGSOError reports whether err is one the kernel gives for a GSO send
// it cannot do: no checksum offload on the route's device (EIO), a
// segment size or count it does not take (EINVAL, EMSGSIZE), or no UDP
// GSO at all (ENOPROTOOPT, EOPNOTSUPP).
func isGSOError(err error) bool {
	for _, e := range []error{syscall.EIO, syscall.EINVAL, syscall.EMSGSIZE, syscall.ENOPROTOOPT, syscall.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
