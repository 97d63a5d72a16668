package utp

import (
	"net"

	"github.com/anacrolix/mmsg"
)

const (
	// maxNumBuffers is how many messages one read of the socket takes,
	// each into its own buffer of recvBufferSize bytes: the memory a
	// Socket's reader holds (1 MiB).
	maxNumBuffers = 16
	// recvBufferSize holds the largest UDP payload, which is also the
	// largest message the kernel coalesces from datagrams (UDP GRO).
	recvBufferSize = 0x10000
	// maxGROSegments bounds the datagrams one coalesced message is split
	// into. Linux coalesces at most 64 datagrams (UDP_GRO_CNT_MAX) on
	// receive and a GSO send carries at most 128 (UDP_MAX_SEGMENTS), so
	// a message that would split into more is not the kernel's doing as
	// expected: it is dropped whole, and one read yields at most
	// maxNumBuffers*maxGROSegments datagrams.
	maxGROSegments = 128
)

// received is one received datagram, as libutp and the non-uTP reader
// see it.
type received struct {
	b    []byte
	addr net.Addr
}

// appendSegments appends to ds the datagrams of b, a message received
// from addr: the datagrams of seg bytes (the last shorter) that the
// kernel coalesced into it when seg is positive, else b itself. A seg no
// smaller than b is one datagram. It returns false, and ds unchanged,
// when b would be more than maxGROSegments datagrams.
func appendSegments(ds []received, b []byte, seg int, addr net.Addr) ([]received, bool) {
	if seg <= 0 || seg >= len(b) {
		return append(ds, received{b, addr}), true
	}
	if (len(b)+seg-1)/seg > maxGROSegments {
		return ds, false
	}
	for len(b) > seg {
		ds = append(ds, received{b[:seg:seg], addr})
		b = b[seg:]
	}
	return append(ds, received{b, addr}), true
}

// recvBatch reads the socket: up to maxNumBuffers messages a read, which
// it appends to ds as datagrams (valid until the next read). n counts
// the messages.
type recvBatch interface {
	read(ds []received) (n int, _ []received, _ error)
}

// mmsgReader reads with recvmmsg where the platform has it, else one
// message a read; it knows nothing of coalesced datagrams.
type mmsgReader struct {
	mc *mmsg.Conn
	ms []mmsg.Message
}

func newMmsgReader(pc net.PacketConn) recvBatch {
	r := &mmsgReader{mc: mmsg.NewConn(pc)}
	n := 1
	if r.mc.Err() == nil {
		n = maxNumBuffers
	}
	r.ms = make([]mmsg.Message, n)
	for i := range r.ms {
		r.ms[i].Buffers = [][]byte{make([]byte, recvBufferSize)}
	}
	return r
}

func (r *mmsgReader) read(ds []received) (int, []received, error) {
	n, err := r.mc.RecvMsgs(r.ms)
	if err != nil {
		return 0, ds, err
	}
	for _, m := range r.ms[:n] {
		ds = append(ds, received{m.Buffers[0][:m.N], m.Addr})
	}
	return n, ds, nil
}
