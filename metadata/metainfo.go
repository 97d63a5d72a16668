package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"

	"github.com/anacrolix/torrent/bencode"
)

// MetaInfo is a .torrent file (BEP 3), with the BEP 5 "nodes" of a
// trackerless torrent.
type MetaInfo struct {
	Info *Info
	// Nodes are DHT nodes to bootstrap from, as host:port.
	Nodes []string
	// Announce is the BEP 3 tracker URL; AnnounceList the BEP 12 tiers,
	// which a client that reads them uses instead.
	Announce     string
	AnnounceList [][]string
	Comment      string
	CreatedBy    string
	CreationDate int64
}

// rawMetaInfo is the keys of a .torrent that we read, as raw values
// aliasing the file. Everything but "info" is optional, so that a
// malformed optional key costs that key only.
type rawMetaInfo struct {
	Info         []byte
	Nodes        []byte
	Announce     []byte
	AnnounceList []byte
	Comment      []byte
	CreatedBy    []byte
	CreationDate []byte
}

// readMetaInfo finds the keys of rawMetaInfo in b; other keys are skipped,
// never decoded.
func readMetaInfo(b []byte) (*rawMetaInfo, error) {
	var rm rawMetaInfo
	err := forEachEntry(b, func(k, v []byte) error {
		switch string(k) {
		case "info":
			rm.Info = v
		case "nodes":
			rm.Nodes = v
		case "announce":
			rm.Announce = v
		case "announce-list":
			rm.AnnounceList = v
		case "comment":
			rm.Comment = v
		case "created by":
			rm.CreatedBy = v
		case "creation date":
			rm.CreationDate = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &rm, nil
}

// ErrNotTorrent is wrapped by ParseMetaInfo's errors about the file as a
// whole (as opposed to its info dictionary, see ErrInvalidInfo).
var ErrNotTorrent = errors.New("not a valid .torrent file")

// ParseMetaInfo parses a .torrent file. The info-hash is over the exact
// bytes of the "info" value. Malformed optional keys are dropped rather than
// fatal, bad "nodes" entries skipped: they cannot make us fetch the wrong
// content.
func ParseMetaInfo(b []byte) (*MetaInfo, error) {
	if len(b) > maxMetaInfoSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrNotTorrent, len(b), maxMetaInfoSize)
	}
	// The decoder would also accept a one-element list holding a dict.
	if len(b) == 0 || b[0] != 'd' {
		return nil, fmt.Errorf("%w: not a bencoded dictionary", ErrNotTorrent)
	}
	rm, err := readMetaInfo(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotTorrent, err)
	}
	if len(rm.Info) == 0 {
		return nil, fmt.Errorf("%w: no info dictionary", ErrNotTorrent)
	}
	// Copied so that Info.Raw does not keep the whole file alive.
	info, err := ParseInfo(bytes.Clone(rm.Info))
	if err != nil {
		return nil, err
	}
	m := &MetaInfo{Info: info, Nodes: parseNodes(rm.Nodes)}
	m.Announce = optional(rm.Announce, stringOf)
	m.Comment = optional(rm.Comment, stringOf)
	m.CreatedBy = optional(rm.CreatedBy, stringOf)
	m.CreationDate = optional(rm.CreationDate, intValue)
	m.AnnounceList = parseAnnounceList(rm.AnnounceList)
	return m, nil
}

// parseAnnounceList reads BEP 12 "announce-list", [[url, ...], ...], keeping
// at most maxTrackers URLs: a megabyte of two-byte empty strings would
// decode to eight times that, and no swarm needs hundreds of trackers. A
// malformed list is dropped whole.
func parseAnnounceList(raw []byte) [][]string {
	if kindOf(raw) != 'l' || len(raw) > maxOptionalSize {
		return nil
	}
	var tiers [][]string
	n := 0
	err := forEachElem(raw, func(t []byte) (bool, error) {
		var tier []string
		err := forEachElem(t, func(u []byte) (bool, error) {
			if n == maxTrackers {
				return false, nil
			}
			s, err := stringOf(u)
			if err != nil {
				return false, err
			}
			tier = append(tier, s)
			n++
			return true, nil
		})
		// Empty tiers carry nothing, and dropping them keeps Marshal and
		// ParseMetaInfo inverse.
		if len(tier) > 0 {
			tiers = append(tiers, tier)
		}
		return n < maxTrackers, err
	})
	if err != nil {
		return nil
	}
	return tiers
}

// optional reads an optional key, or returns the zero value if it is
// missing, malformed or larger than maxOptionalSize.
func optional[T any](raw []byte, read func([]byte) (T, error)) T {
	var zero T
	if len(raw) == 0 || len(raw) > maxOptionalSize {
		return zero
	}
	v, err := read(raw)
	if err != nil {
		return zero
	}
	return v
}

// parseNodes reads BEP 5 "nodes", [[host, port], ...], skipping entries
// that are not a plausible host and a port.
func parseNodes(raw []byte) []string {
	if kindOf(raw) != 'l' || len(raw) > maxOptionalSize {
		return nil
	}
	var nodes []string
	forEachElem(raw, func(e []byte) (bool, error) {
		if n, ok := parseNode(e); ok {
			nodes = append(nodes, n)
		}
		return len(nodes) < maxNodes, nil
	})
	return nodes
}

// parseNode reads one "nodes" entry, [host, port].
func parseNode(e []byte) (string, bool) {
	if kindOf(e) != 'l' {
		return "", false
	}
	var hp [][]byte
	forEachElem(e, func(v []byte) (bool, error) {
		hp = append(hp, v)
		return len(hp) <= 2, nil
	})
	if len(hp) != 2 {
		return "", false
	}
	host, err := stringOf(hp[0])
	if err != nil || !validHost(host) {
		return "", false
	}
	port, err := intValue(hp[1])
	if err != nil || port < 1 || port > 65535 {
		return "", false
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10)), true
}

// validHost accepts an IP address or a DNS name: anything else could not be
// dialled, and might not survive a host:port round trip.
func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		// A zone names an interface of the creator's machine, not ours.
		return a.Zone() == ""
	}
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// splitNode parses a host:port for the "nodes" key.
func splitNode(s string) (string, int64, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("node %q: %w", s, err)
	}
	p, err := strconv.ParseInt(port, 10, 64)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("node %q: bad port", s)
	}
	if !validHost(host) {
		return "", 0, fmt.Errorf("node %q: bad host", s)
	}
	return host, p, nil
}

// wireMetaInfo is a .torrent as written: the encoder sorts keys by tag.
type wireMetaInfo struct {
	Announce     string        `bencode:"announce,omitempty"`
	AnnounceList [][]string    `bencode:"announce-list,omitempty"`
	Comment      string        `bencode:"comment,omitempty"`
	CreatedBy    string        `bencode:"created by,omitempty"`
	CreationDate int64         `bencode:"creation date,omitempty"`
	Info         bencode.Bytes `bencode:"info"`
	Nodes        [][]any       `bencode:"nodes,omitempty"`
}

// Marshal writes the .torrent. The info dictionary goes out as its exact
// Raw bytes, so the info-hash cannot change.
func (m *MetaInfo) Marshal() ([]byte, error) {
	if m.Info == nil || len(m.Info.Raw) == 0 {
		return nil, errors.New("metainfo: no info dictionary")
	}
	w := wireMetaInfo{
		Announce:     m.Announce,
		Comment:      m.Comment,
		CreatedBy:    m.CreatedBy,
		CreationDate: m.CreationDate,
		Info:         m.Info.Raw,
	}
	for _, t := range m.AnnounceList {
		if len(t) > 0 {
			w.AnnounceList = append(w.AnnounceList, t)
		}
	}
	for _, n := range m.Nodes {
		host, port, err := splitNode(n)
		if err != nil {
			return nil, fmt.Errorf("metainfo: %w", err)
		}
		w.Nodes = append(w.Nodes, []any{host, port})
	}
	b, err := bencode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("metainfo: %w", err)
	}
	return b, nil
}

// Magnet returns the torrent's magnet link: Info.Magnet with a "tr" for
// each tracker, in tier order (announce-list, or else announce).
func (m *MetaInfo) Magnet() string {
	s := m.Info.Magnet()
	trackers := slices.Concat(m.AnnounceList...)
	if len(trackers) == 0 && m.Announce != "" {
		trackers = []string{m.Announce}
	}
	for _, t := range trackers {
		s += "&tr=" + url.QueryEscape(t)
	}
	return s
}
