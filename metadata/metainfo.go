package metadata

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/anacrolix/torrent/bencode"
)

// MetaInfo is a .torrent file (BEP 3), with the BEP 5 "nodes" of a
// trackerless torrent.
type MetaInfo struct {
	Info *Info
	// Nodes are DHT nodes to bootstrap from, as host:port.
	Nodes []string
	// Announce and AnnounceList are kept only so that the user can be told
	// that trackers are ignored.
	Announce     string
	AnnounceList [][]string
	Comment      string
	CreatedBy    string
	CreationDate int64
}

// rawMetaInfo is a .torrent as decoded. Everything but "info" is optional
// and kept raw, so that a malformed optional key costs that key only.
type rawMetaInfo struct {
	Info         bencode.Bytes `bencode:"info"`
	Nodes        bencode.Bytes `bencode:"nodes"`
	Announce     bencode.Bytes `bencode:"announce"`
	AnnounceList bencode.Bytes `bencode:"announce-list"`
	Comment      bencode.Bytes `bencode:"comment"`
	CreatedBy    bencode.Bytes `bencode:"created by"`
	CreationDate bencode.Bytes `bencode:"creation date"`
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
	var rm rawMetaInfo
	if err := decodeAll(b, &rm); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotTorrent, err)
	}
	if len(rm.Info) == 0 {
		return nil, fmt.Errorf("%w: no info dictionary", ErrNotTorrent)
	}
	info, err := ParseInfo(rm.Info)
	if err != nil {
		return nil, err
	}
	m := &MetaInfo{Info: info, Nodes: parseNodes(rm.Nodes)}
	optional(rm.Announce, &m.Announce)
	optional(rm.Comment, &m.Comment)
	optional(rm.CreatedBy, &m.CreatedBy)
	optional(rm.CreationDate, &m.CreationDate)
	var tiers [][]string
	optional(rm.AnnounceList, &tiers)
	// Empty tiers carry nothing, and dropping them keeps Marshal and
	// ParseMetaInfo inverse.
	for _, t := range tiers {
		if len(t) > 0 {
			m.AnnounceList = append(m.AnnounceList, t)
		}
	}
	return m, nil
}

// optional decodes an optional key, leaving v unchanged if it is missing or
// malformed.
func optional[T any](raw bencode.Bytes, v *T) {
	if len(raw) == 0 || len(raw) > maxOptionalSize {
		return
	}
	var t T
	if decodeAll(raw, &t) == nil {
		*v = t
	}
}

// parseNodes reads BEP 5 "nodes", [[host, port], ...], skipping entries
// that are not a plausible host and a port.
func parseNodes(raw bencode.Bytes) []string {
	if len(raw) == 0 || raw[0] != 'l' || len(raw) > maxOptionalSize {
		return nil
	}
	var entries []bencode.Bytes
	if decodeAll(raw, &entries) != nil {
		return nil
	}
	var nodes []string
	for _, e := range entries {
		if len(nodes) == maxNodes {
			break
		}
		// Decoded through any: the library cannot decode a list into []any.
		var v any
		if decodeAll(e, &v) != nil {
			continue
		}
		hp, ok := v.([]any)
		if !ok || len(hp) != 2 {
			continue
		}
		host, ok := hp[0].(string)
		port, ok2 := hp[1].(int64)
		if !ok || !ok2 || !validHost(host) || port < 1 || port > 65535 {
			continue
		}
		nodes = append(nodes, net.JoinHostPort(host, strconv.FormatInt(port, 10)))
	}
	return nodes
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

// Magnet returns the torrent's magnet link; see Info.Magnet.
func (m *MetaInfo) Magnet() string { return m.Info.Magnet() }
