package wire

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"
)

// ExtPexName is the BEP 11 extension name in the "m" dictionary.
const ExtPexName = "ut_pex"

// MaxPexPeers bounds the added contacts (IPv4 and IPv6 together) and,
// separately, the dropped ones in one ut_pex message, both ways. BEP 11
// asks for at most 50 of each, except in a connection's first message,
// which libtorrent fills with up to 100; a bound well above that refuses
// only messages no client sends, and keeps what a decoded message holds
// small whatever its size.
const MaxPexPeers = 500

// ErrPex means a ut_pex message was rejected, either while parsing or
// because Append was given unencodable values.
var ErrPex = errors.New("bad ut_pex message")

// PexFlags are the BEP 11 flags of an added contact, one byte each.
type PexFlags uint8

// The flags BEP 11 defines. Unknown bits are kept as received.
const (
	// PexEncryption: the peer prefers encryption.
	PexEncryption PexFlags = 0x01
	// PexSeed: the peer is a seed (or upload-only).
	PexSeed PexFlags = 0x02
	// PexUTP: the peer supports uTP.
	PexUTP PexFlags = 0x04
	// PexHolepunch: the peer supports ut_holepunch.
	PexHolepunch PexFlags = 0x08
	// PexReachable: the sender connected out to the peer, so it listens
	// where the contact says.
	PexReachable PexFlags = 0x10
)

// PexPeer is one added contact.
type PexPeer struct {
	Addr  netip.AddrPort
	Flags PexFlags
}

// Pex is the payload of a BEP 11 ut_pex message. IPv4 and IPv6 contacts
// share each list: an IPv4 address (Is4) goes in "added"/"dropped" as 6
// bytes, any other in "added6"/"dropped6" as 18. Parsing lists the IPv4
// contacts first.
type Pex struct {
	Added   []PexPeer
	Dropped []netip.AddrPort
}

// pexWire is the dictionary as sent. Every key is a byte string; a
// missing key decodes as empty, which is what it means.
type pexWire struct {
	Added    string `bencode:"added"`
	AddedF   string `bencode:"added.f"`
	Added6   string `bencode:"added6"`
	Added6F  string `bencode:"added6.f"`
	Dropped  string `bencode:"dropped"`
	Dropped6 string `bencode:"dropped6"`
}

func pexErr(format string, args ...any) error {
	return fmt.Errorf("wire: %w: "+format, append([]any{ErrPex}, args...)...)
}

// Append appends the bencoded ut_pex dictionary (the payload only, not
// the extended id byte) to b. Every key is written, empty or not, as
// libtorrent does. It fails on an invalid address or on more than
// MaxPexPeers added or dropped contacts.
func (p Pex) Append(b []byte) ([]byte, error) {
	if len(p.Added) > MaxPexPeers || len(p.Dropped) > MaxPexPeers {
		return b, pexErr("%d added, %d dropped; max %d each", len(p.Added), len(p.Dropped), MaxPexPeers)
	}
	var w pexWire
	var added, addedF, added6, added6F, dropped, dropped6 []byte
	for _, a := range p.Added {
		if !a.Addr.Addr().IsValid() {
			return b, pexErr("invalid added address")
		}
		if a.Addr.Addr().Is4() {
			added = appendCompact(added, a.Addr)
			addedF = append(addedF, byte(a.Flags))
		} else {
			added6 = appendCompact(added6, a.Addr)
			added6F = append(added6F, byte(a.Flags))
		}
	}
	for _, a := range p.Dropped {
		if !a.Addr().IsValid() {
			return b, pexErr("invalid dropped address")
		}
		if a.Addr().Is4() {
			dropped = appendCompact(dropped, a)
		} else {
			dropped6 = appendCompact(dropped6, a)
		}
	}
	w.Added, w.AddedF, w.Added6, w.Added6F = string(added), string(addedF), string(added6), string(added6F)
	w.Dropped, w.Dropped6 = string(dropped), string(dropped6)
	enc, err := bencode.Marshal(w)
	if err != nil {
		return b, pexErr("encoding: %w", err)
	}
	return append(b, enc...), nil
}

// appendCompact appends a's compact form: the address in network order
// (4 bytes for IPv4, else 16), then the port, big-endian.
func appendCompact(b []byte, a netip.AddrPort) []byte {
	b = append(b, a.Addr().AsSlice()...)
	return append(b, byte(a.Port()>>8), byte(a.Port()))
}

// ParsePex decodes a ut_pex dictionary. Unknown keys are ignored. Each
// contact list must be a whole number of 6- or 18-byte entries; a flags
// string must be empty (no flags) or hold one byte per contact of its
// list; more than MaxPexPeers added, or dropped, contacts are refused.
// Addresses are returned as sent: whether one is worth dialling is the
// caller's call.
//
// Allocation is bounded by len(b), which is capped like an extended
// handshake's.
func ParsePex(b []byte) (Pex, error) {
	if len(b) > maxExtendedPayload {
		return Pex{}, pexErr("%d bytes, max %d", len(b), maxExtendedPayload)
	}
	if len(b) == 0 || b[0] != 'd' {
		return Pex{}, pexErr("not a dictionary")
	}
	var w pexWire
	if err := decodeExact(b, &w); err != nil {
		return Pex{}, pexErr("%w", err)
	}
	n4, err := compactCount("added", w.Added, 6)
	if err != nil {
		return Pex{}, err
	}
	n6, err := compactCount("added6", w.Added6, 18)
	if err != nil {
		return Pex{}, err
	}
	d4, err := compactCount("dropped", w.Dropped, 6)
	if err != nil {
		return Pex{}, err
	}
	d6, err := compactCount("dropped6", w.Dropped6, 18)
	if err != nil {
		return Pex{}, err
	}
	if n4+n6 > MaxPexPeers || d4+d6 > MaxPexPeers {
		return Pex{}, pexErr("%d added, %d dropped; max %d each", n4+n6, d4+d6, MaxPexPeers)
	}
	if len(w.AddedF) != 0 && len(w.AddedF) != n4 {
		return Pex{}, pexErr("added.f has %d flags for %d contacts", len(w.AddedF), n4)
	}
	if len(w.Added6F) != 0 && len(w.Added6F) != n6 {
		return Pex{}, pexErr("added6.f has %d flags for %d contacts", len(w.Added6F), n6)
	}
	var p Pex
	if n4+n6 > 0 {
		p.Added = make([]PexPeer, 0, n4+n6)
	}
	p.Added = appendAdded(p.Added, w.Added, w.AddedF, 4)
	p.Added = appendAdded(p.Added, w.Added6, w.Added6F, 16)
	if d4+d6 > 0 {
		p.Dropped = make([]netip.AddrPort, 0, d4+d6)
	}
	p.Dropped = appendDropped(p.Dropped, w.Dropped, 4)
	p.Dropped = appendDropped(p.Dropped, w.Dropped6, 16)
	return p, nil
}

func compactCount(key, s string, size int) (int, error) {
	if len(s)%size != 0 {
		return 0, pexErr("%s is %d bytes, not a multiple of %d", key, len(s), size)
	}
	return len(s) / size, nil
}

func readCompact(s string, ipLen int) netip.AddrPort {
	ip, _ := netip.AddrFromSlice([]byte(s[:ipLen]))
	return netip.AddrPortFrom(ip, uint16(s[ipLen])<<8|uint16(s[ipLen+1]))
}

func appendAdded(out []PexPeer, s, flags string, ipLen int) []PexPeer {
	for i := 0; len(s) > 0; i++ {
		pp := PexPeer{Addr: readCompact(s, ipLen)}
		if flags != "" {
			pp.Flags = PexFlags(flags[i])
		}
		out = append(out, pp)
		s = s[ipLen+2:]
	}
	return out
}

func appendDropped(out []netip.AddrPort, s string, ipLen int) []netip.AddrPort {
	for ; len(s) > 0; s = s[ipLen+2:] {
		out = append(out, readCompact(s, ipLen))
	}
	return out
}
