package magnet

import (
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
)

// Link is a parsed magnet URI.
type Link struct {
	InfoHash   [20]byte // v1 info-hash (xt=urn:btih:), zero if the link is v2-only
	HasV1      bool
	InfoHashV2 [32]byte // v2 info-hash (xt=urn:btmh:1220<64 hex>), zero if absent
	HasV2      bool
	Name       string   // dn
	Trackers   []string // tr
	Peers      []string // x.pe: host:port strings, as given (validated to be host:port)
	WebSeeds   []string // ws
	Select     string   // so (BEP 53): a file index selection such as "0,2,4-6", raw
	Length     int64    // xl, 0 if absent
}

// String returns the canonical magnet URI for l: the btih then the btmh
// exact topic, dn, xl, every tr, ws and x.pe in order, then so. Hashes are
// lowercase hex and other values are query-escaped. Empty and zero fields
// are left out, matching what Parse ignores, so that a parsed Link survives a
// round trip unchanged. A Link with neither HasV1 nor HasV2 formats to a URI
// that Parse rejects, because such a link names no torrent.
func (l Link) String() string {
	var b strings.Builder
	b.WriteString("magnet:?")
	first := true
	add := func(key, value string) {
		if !first {
			b.WriteByte('&')
		}
		first = false
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(value)
	}
	if l.HasV1 {
		add("xt", btihPrefix+hex.EncodeToString(l.InfoHash[:]))
	}
	if l.HasV2 {
		add("xt", btmhPrefix+sha256Multihash+hex.EncodeToString(l.InfoHashV2[:]))
	}
	if l.Name != "" {
		add("dn", url.QueryEscape(l.Name))
	}
	if l.Length > 0 {
		add("xl", strconv.FormatInt(l.Length, 10))
	}
	for _, t := range l.Trackers {
		if t != "" {
			add("tr", url.QueryEscape(t))
		}
	}
	for _, w := range l.WebSeeds {
		if w != "" {
			add("ws", url.QueryEscape(w))
		}
	}
	for _, p := range l.Peers {
		add("x.pe", url.QueryEscape(p))
	}
	if l.Select != "" {
		add("so", url.QueryEscape(l.Select))
	}
	return b.String()
}
