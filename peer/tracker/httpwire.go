package tracker

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/anacrolix/torrent/bencode"
)

// maxDepth caps the nesting of an HTTP answer: the deepest honest one is
// a scrape's files → info-hash → counts, three dictionaries down.
const maxDepth = 8

// httpAnswer is an HTTP announce answer (BEP 3, BEP 23, BEP 7). Peers is
// kept raw: a string in the compact form, a list of dictionaries in the
// original one.
type httpAnswer struct {
	FailureReason  *string       `bencode:"failure reason"`
	WarningMessage string        `bencode:"warning message"`
	Interval       int64         `bencode:"interval"`
	MinInterval    int64         `bencode:"min interval"`
	Complete       int64         `bencode:"complete"`
	Incomplete     int64         `bencode:"incomplete"`
	Peers          bencode.Bytes `bencode:"peers"`
	Peers6         bencode.Bytes `bencode:"peers6"`
	TrackerID      string        `bencode:"tracker id"`
}

// dictPeer is a peer in the original, non-compact form.
type dictPeer struct {
	IP   string `bencode:"ip"`
	Port int64  `bencode:"port"`
}

// decodeBencode decodes b, a whole bencoded dictionary, into v: after a
// cheap walk that checks its nesting and that it is one value, and with
// strings capped at the input's length (the decoder allocates a string's
// claimed length before reading it).
func decodeBencode(b []byte, v any) error {
	if len(b) == 0 || b[0] != 'd' {
		return badAnswer("not a bencoded dictionary")
	}
	if err := checkBencode(b); err != nil {
		return err
	}
	d := bencode.NewDecoder(bytes.NewReader(b))
	d.MaxStrLen = int64(len(b))
	if err := d.Decode(v); err != nil {
		return badAnswer("%v", err)
	}
	return nil
}

// checkBencode walks b's tokens: one value, nesting at most maxDepth,
// every string within b.
func checkBencode(b []byte) error {
	depth, i := 0, 0
	for {
		if i >= len(b) {
			return badAnswer("truncated")
		}
		switch c := b[i]; {
		case c == 'd' || c == 'l':
			if depth++; depth > maxDepth {
				return badAnswer("nested deeper than %d", maxDepth)
			}
			i++
			continue
		case c == 'e':
			if depth == 0 {
				return badAnswer("unexpected end")
			}
			depth--
			i++
		case c == 'i':
			j := bytes.IndexByte(b[i:], 'e')
			if j < 0 {
				return badAnswer("truncated integer")
			}
			i += j + 1
		case c >= '0' && c <= '9':
			j := bytes.IndexByte(b[i:], ':')
			if j < 0 || j > 10 {
				return badAnswer("bad string length")
			}
			n, err := strconv.Atoi(string(b[i : i+j]))
			if err != nil || n > len(b)-i-j-1 {
				return badAnswer("string runs past the end")
			}
			i += j + 1 + n
		default:
			return badAnswer("unexpected byte %q", c)
		}
		if depth == 0 {
			if i != len(b) {
				return badAnswer("%d bytes after the answer", len(b)-i)
			}
			return nil
		}
	}
}

// ParseAnnounce decodes an HTTP tracker's announce answer. A "failure
// reason" is an *Error; anything we cannot use wraps ErrBadAnswer. Peers
// beyond MaxPeersPerAnswer are dropped and counted in Dropped.
func ParseAnnounce(b []byte) (Response, error) {
	if len(b) > MaxBodySize {
		return Response{}, badAnswer("%d bytes, more than %d", len(b), MaxBodySize)
	}
	var a httpAnswer
	if err := decodeBencode(b, &a); err != nil {
		return Response{}, err
	}
	if a.FailureReason != nil {
		return Response{}, &Error{clean(*a.FailureReason)}
	}
	r := Response{
		Interval:    seconds(a.Interval),
		MinInterval: seconds(a.MinInterval),
		Seeders:     clampCount(a.Complete),
		Leechers:    clampCount(a.Incomplete),
		Warning:     clean(a.WarningMessage),
	}
	if len(a.TrackerID) <= maxTrackerIDLen {
		r.TrackerID = a.TrackerID
	}
	if len(a.Peers) > 0 {
		var err error
		if a.Peers[0] == 'l' {
			err = r.addDictPeers(a.Peers)
		} else {
			err = r.addCompact(a.Peers, 6)
		}
		if err != nil {
			return Response{}, err
		}
	}
	if len(a.Peers6) > 0 {
		if err := r.addCompact(a.Peers6, 18); err != nil {
			return Response{}, err
		}
	}
	if len(a.Peers) == 0 && len(a.Peers6) == 0 && r.Seeders+r.Leechers == 0 && a.Interval == 0 {
		// Neither peers nor anything else an announce answer has: some
		// other dictionary.
		return Response{}, badAnswer("no peers, no interval")
	}
	return r, nil
}

func clampCount(n int64) int {
	return int(min(max(n, 0), 1<<31-1))
}

// addCompact appends the compact peers in raw, a bencoded string of
// size-byte entries (BEP 23: 6, BEP 7: 18).
func (r *Response) addCompact(raw []byte, size int) error {
	var s []byte
	if err := bencode.Unmarshal(raw, &s); err != nil {
		return badAnswer("compact peers: not a string")
	}
	if len(s)%size != 0 {
		return badAnswer("compact peers: %d bytes, not a multiple of %d", len(s), size)
	}
	for ; len(s) > 0; s = s[size:] {
		ip, _ := netip.AddrFromSlice(s[:size-2])
		r.add(netip.AddrPortFrom(ip.Unmap(), binary.BigEndian.Uint16(s[size-2:size])))
	}
	return nil
}

// addDictPeers appends the peers of the original form, a list of
// dictionaries with "ip" (an address; we resolve no names a tracker
// gives) and "port".
func (r *Response) addDictPeers(raw []byte) error {
	var ps []dictPeer
	if err := bencode.Unmarshal(raw, &ps); err != nil {
		return badAnswer("peer list: %v", err)
	}
	for _, p := range ps {
		ip, err := netip.ParseAddr(p.IP)
		if err != nil || ip.Zone() != "" || p.Port < 1 || p.Port > 65535 {
			r.Dropped++
			continue
		}
		r.add(netip.AddrPortFrom(ip.Unmap(), uint16(p.Port)))
	}
	return nil
}

// add appends a unless the answer is full or a cannot be a peer.
func (r *Response) add(a netip.AddrPort) {
	if len(r.Peers) >= MaxPeersPerAnswer || a.Port() == 0 || !a.Addr().IsValid() || a.Addr().IsUnspecified() {
		r.Dropped++
		return
	}
	r.Peers = append(r.Peers, a)
}

// httpScrape is an HTTP scrape answer (BEP 48).
type httpScrape struct {
	FailureReason *string                     `bencode:"failure reason"`
	Files         map[string]httpScrapeCounts `bencode:"files"`
}

type httpScrapeCounts struct {
	Complete   int64 `bencode:"complete"`
	Downloaded int64 `bencode:"downloaded"`
	Incomplete int64 `bencode:"incomplete"`
}

// ParseScrape decodes an HTTP scrape answer; torrents the tracker does
// not know are missing from the map.
func ParseScrape(b []byte) (map[[20]byte]ScrapeResult, error) {
	if len(b) > MaxBodySize {
		return nil, badAnswer("%d bytes, more than %d", len(b), MaxBodySize)
	}
	var s httpScrape
	if err := decodeBencode(b, &s); err != nil {
		return nil, err
	}
	if s.FailureReason != nil {
		return nil, &Error{clean(*s.FailureReason)}
	}
	if s.Files == nil {
		return nil, badAnswer("scrape: no files")
	}
	out := make(map[[20]byte]ScrapeResult, len(s.Files))
	for k, c := range s.Files {
		if len(k) != 20 {
			return nil, badAnswer("scrape: a %d-byte info-hash", len(k))
		}
		out[[20]byte([]byte(k))] = ScrapeResult{
			Seeders: clampCount(c.Complete), Completed: clampCount(c.Downloaded), Leechers: clampCount(c.Incomplete),
		}
	}
	return out, nil
}
