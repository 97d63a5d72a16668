package tracker

import (
	"encoding/binary"
	"net/netip"
)

// BEP 15 packets. Requests are built with appendX, answers read with
// parseX; none of them does I/O.

const (
	udpProtocolID = 0x41727101980

	actionConnect  = 0
	actionAnnounce = 1
	actionScrape   = 2
	actionError    = 3

	// maxScrapeHashes is BEP 15's limit of info-hashes per scrape
	// (about 74 fit one packet).
	maxScrapeHashes = 74
)

func appendConnect(b []byte, tx uint32) []byte {
	b = binary.BigEndian.AppendUint64(b, udpProtocolID)
	b = binary.BigEndian.AppendUint32(b, actionConnect)
	return binary.BigEndian.AppendUint32(b, tx)
}

func appendAnnounce(b []byte, conn uint64, tx uint32, r Request) []byte {
	b = binary.BigEndian.AppendUint64(b, conn)
	b = binary.BigEndian.AppendUint32(b, actionAnnounce)
	b = binary.BigEndian.AppendUint32(b, tx)
	b = append(b, r.InfoHash[:]...)
	b = append(b, r.PeerID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(max(r.Downloaded, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(r.Left, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(r.Uploaded, 0)))
	b = binary.BigEndian.AppendUint32(b, uint32(r.Event))
	b = binary.BigEndian.AppendUint32(b, 0) // IP: the sender's
	b = binary.BigEndian.AppendUint32(b, r.Key)
	b = binary.BigEndian.AppendUint32(b, uint32(r.numWant()))
	return binary.BigEndian.AppendUint16(b, r.Port)
}

func appendScrape(b []byte, conn uint64, tx uint32, hashes [][20]byte) []byte {
	b = binary.BigEndian.AppendUint64(b, conn)
	b = binary.BigEndian.AppendUint32(b, actionScrape)
	b = binary.BigEndian.AppendUint32(b, tx)
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

// numWant is what we ask for: nothing when we leave.
func (r Request) numWant() int32 {
	if r.Event == Stopped {
		return 0
	}
	if r.NumWant <= 0 {
		return DefaultNumWant
	}
	return min(r.NumWant, MaxPeersPerAnswer)
}

// errWrongTx is returned by parseHeader for a packet that is not the
// answer we wait for (another transaction, an action we did not ask
// for): the caller ignores it and keeps waiting.
var errWrongTx = badAnswer("wrong transaction ID or action")

// parseHeader checks an answer's action and transaction ID, turning an
// error action into an *Error; it returns the rest of the packet.
func parseHeader(b []byte, action, tx uint32) ([]byte, error) {
	if len(b) < 8 {
		return nil, badAnswer("%d-byte packet", len(b))
	}
	if binary.BigEndian.Uint32(b[4:8]) != tx {
		return nil, errWrongTx
	}
	switch a := binary.BigEndian.Uint32(b[:4]); a {
	case action:
		return b[8:], nil
	case actionError:
		return nil, &Error{clean(string(b[8:]))}
	default:
		return nil, errWrongTx
	}
}

// parseConnect reads a connect answer: the connection ID.
func parseConnect(b []byte, tx uint32) (uint64, error) {
	p, err := parseHeader(b, actionConnect, tx)
	if err != nil {
		return 0, err
	}
	if len(p) < 8 {
		return 0, badAnswer("connect: %d-byte packet", len(b))
	}
	return binary.BigEndian.Uint64(p), nil
}

// parseUDPAnnounce reads an announce answer. Its peers are 6 bytes each
// from an IPv4 tracker and 18 from an IPv6 one (BEP 15).
func parseUDPAnnounce(b []byte, tx uint32, v6 bool) (Response, error) {
	p, err := parseHeader(b, actionAnnounce, tx)
	if err != nil {
		return Response{}, err
	}
	if len(p) < 12 {
		return Response{}, badAnswer("announce: %d-byte packet", len(b))
	}
	r := Response{
		Interval: seconds(int64(binary.BigEndian.Uint32(p))),
		Leechers: clampCount(int64(binary.BigEndian.Uint32(p[4:]))),
		Seeders:  clampCount(int64(binary.BigEndian.Uint32(p[8:]))),
	}
	size := 6
	if v6 {
		size = 18
	}
	s := p[12:]
	if len(s)%size != 0 {
		return Response{}, badAnswer("announce: %d bytes of peers, not a multiple of %d", len(s), size)
	}
	for ; len(s) > 0; s = s[size:] {
		ip, _ := netip.AddrFromSlice(s[:size-2])
		r.add(netip.AddrPortFrom(ip.Unmap(), binary.BigEndian.Uint16(s[size-2:size])))
	}
	return r, nil
}

// parseUDPScrape reads a scrape answer for n info-hashes, in their order.
func parseUDPScrape(b []byte, tx uint32, n int) ([]ScrapeResult, error) {
	p, err := parseHeader(b, actionScrape, tx)
	if err != nil {
		return nil, err
	}
	if len(p) < 12*n {
		return nil, badAnswer("scrape: %d bytes for %d torrents", len(p), n)
	}
	out := make([]ScrapeResult, n)
	for i := range out {
		q := p[12*i:]
		out[i] = ScrapeResult{
			Seeders:   clampCount(int64(binary.BigEndian.Uint32(q))),
			Completed: clampCount(int64(binary.BigEndian.Uint32(q[4:]))),
			Leechers:  clampCount(int64(binary.BigEndian.Uint32(q[8:]))),
		}
	}
	return out, nil
}
