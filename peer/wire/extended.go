package wire

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"
)

// ExtMetadataName is the BEP 9 extension name in the "m" dictionary.
const ExtMetadataName = "ut_metadata"

const (
	// maxExtensions bounds the "m" dictionary. Real clients advertise a
	// handful; a bound keeps a hostile map from costing us more than a
	// small, fixed amount per connection.
	maxExtensions = 64
	// maxExtendedID is the largest extended message id: it is one byte.
	maxExtendedID = 255
	maxPort       = 1<<16 - 1
)

// ExtendedHandshake is the BEP 10 extended handshake, the payload of
// extended message id 0. Zero-valued optional fields are omitted when
// encoding.
type ExtendedHandshake struct {
	// M maps extension names to the extended message ids the sender wants
	// to receive them on. A value of 0 means disabled: Append writes it
	// (that is how a later handshake turns an extension off) and
	// ParseExtendedHandshake drops it, so a parsed M holds only usable ids.
	M map[string]int `bencode:"m"`
	// V is the client name and version, for display only.
	V string `bencode:"v,omitempty"`
	// P is the sender's listen port; 0 means not given.
	P int `bencode:"p,omitempty"`
	// Reqq is how many outstanding requests the sender will queue.
	Reqq int `bencode:"reqq,omitempty"`
	// MetadataSize is the info dictionary's size in bytes (BEP 9).
	MetadataSize int `bencode:"metadata_size,omitempty"`
	// YourIP is the receiver's address as the sender sees it, as raw
	// network-order bytes (4 or 16), which is how BEP 10 encodes it; a
	// string keeps the struct comparable and maps straight onto the
	// bencoded string. Use YourAddr to read it.
	YourIP string `bencode:"yourip,omitempty"`
	// IPv4 and IPv6 are the sender's own addresses (BEP 7), raw 4 and
	// 16 bytes: where else it may be reached, typically in the family the
	// connection does not use. Use Addr4 and Addr6 to read them.
	IPv4 string `bencode:"ipv4,omitempty"`
	IPv6 string `bencode:"ipv6,omitempty"`
	// Dropped counts the address fields (yourip, ipv4, ipv6) that
	// ParseExtendedHandshake ignored for a wrong length. It is never
	// encoded.
	Dropped int `bencode:"-"`
}

// extendedHandshakeWire is what we decode into. "m" is taken raw because
// the bencode library would accept a one-element list as a dict, and a
// map with out-of-range ids must be rejected before it is exposed.
type extendedHandshakeWire struct {
	M            bencode.Bytes `bencode:"m"`
	V            string        `bencode:"v"`
	P            int           `bencode:"p"`
	Reqq         int           `bencode:"reqq"`
	MetadataSize int           `bencode:"metadata_size"`
	YourIP       string        `bencode:"yourip"`
	IPv4         string        `bencode:"ipv4"`
	IPv6         string        `bencode:"ipv6"`
}

func extErr(format string, args ...any) error {
	return fmt.Errorf("wire: %w: "+format, append([]any{ErrExtendedHandshake}, args...)...)
}

// validate holds the rules shared by Append and Parse, so that anything we
// parse can be re-encoded and anything we encode a peer running this code
// would accept.
func (h *ExtendedHandshake) validate() error {
	if len(h.M) > maxExtensions {
		return extErr("%d extensions in m, max %d", len(h.M), maxExtensions)
	}
	for name, id := range h.M {
		if id < 0 || id > maxExtendedID {
			return extErr("extension %q has id %d, want 0..%d", name, id, maxExtendedID)
		}
	}
	if h.P < 0 || h.P > maxPort {
		return extErr("p %d out of range", h.P)
	}
	if h.Reqq < 0 {
		return extErr("negative reqq %d", h.Reqq)
	}
	if h.MetadataSize < 0 {
		return extErr("negative metadata_size %d", h.MetadataSize)
	}
	if len(h.IPv4) != 0 && len(h.IPv4) != 4 {
		return extErr("ipv4 of %d bytes", len(h.IPv4))
	}
	if len(h.IPv6) != 0 && len(h.IPv6) != 16 {
		return extErr("ipv6 of %d bytes", len(h.IPv6))
	}
	return nil
}

// Append appends the bencoded handshake dictionary (the payload only, not
// the extended id byte) to b. It fails on values a peer would reject:
// ids outside 0..255, more than 64 extensions, a port outside 0..65535, or
// negative counts, an ipv4 or ipv6 of the wrong length. YourIP is written
// as given.
func (h ExtendedHandshake) Append(b []byte) ([]byte, error) {
	if err := h.validate(); err != nil {
		return b, err
	}
	enc, err := bencode.Marshal(h)
	if err != nil {
		return b, fmt.Errorf("wire: %w: encoding: %w", ErrExtendedHandshake, err)
	}
	return append(b, enc...), nil
}

// ParseExtendedHandshake decodes a BEP 10 handshake dictionary. Unknown
// keys are ignored, as BEP 10 requires for forward compatibility. A yourip
// that is not 4 or 16 bytes, an ipv4 not 4 or an ipv6 not 16, is dropped
// and counted in Dropped rather than failing the handshake, since each is
// purely informational.
//
// Allocation is bounded by len(b): the decoder refuses string lengths
// longer than the input, and the input itself is capped at the largest
// extended payload MaxMessageLen permits, which also bounds the nesting
// depth the recursive decoder can reach.
func ParseExtendedHandshake(b []byte) (ExtendedHandshake, error) {
	var h ExtendedHandshake
	if len(b) > maxExtendedPayload {
		return h, extErr("%d bytes, max %d", len(b), maxExtendedPayload)
	}
	if len(b) == 0 || b[0] != 'd' {
		return h, extErr("not a dictionary")
	}
	var w extendedHandshakeWire
	if err := decodeExact(b, &w); err != nil {
		return h, extErr("%w", err)
	}
	h = ExtendedHandshake{
		M:            make(map[string]int),
		V:            w.V,
		P:            w.P,
		Reqq:         w.Reqq,
		MetadataSize: w.MetadataSize,
	}
	if len(w.YourIP) == 4 || len(w.YourIP) == 16 {
		h.YourIP = w.YourIP
	} else if w.YourIP != "" {
		h.Dropped++
	}
	if len(w.IPv4) == 4 {
		h.IPv4 = w.IPv4
	} else if w.IPv4 != "" {
		h.Dropped++
	}
	if len(w.IPv6) == 16 {
		h.IPv6 = w.IPv6
	} else if w.IPv6 != "" {
		h.Dropped++
	}
	if len(w.M) > 0 {
		if w.M[0] != 'd' {
			return ExtendedHandshake{}, extErr("m is not a dictionary")
		}
		var m map[string]int64
		if err := decodeExact(w.M, &m); err != nil {
			return ExtendedHandshake{}, extErr("m: %w", err)
		}
		if len(m) > maxExtensions {
			return ExtendedHandshake{}, extErr("%d extensions in m, max %d", len(m), maxExtensions)
		}
		for name, id := range m {
			if id < 0 || id > maxExtendedID {
				return ExtendedHandshake{}, extErr("extension %q has id %d, want 0..%d", name, id, maxExtendedID)
			}
			if id != 0 {
				h.M[name] = int(id)
			}
		}
	}
	if err := h.validate(); err != nil {
		return ExtendedHandshake{}, err
	}
	return h, nil
}

// decodeExact decodes exactly one bencoded value filling b. MaxStrLen is
// len(b) because no string can be longer than its input, and the default
// limit (128 MiB) would let a 10-byte header trigger a huge allocation.
func decodeExact(b []byte, v any) error {
	d := bencode.NewDecoder(bytes.NewReader(b))
	d.MaxStrLen = int64(len(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	return d.ReadEOF()
}

// YourAddr returns the yourip address, if the peer sent a valid one.
// IPv4-mapped IPv6 addresses are unmapped so callers compare them equal to
// plain IPv4.
func (h ExtendedHandshake) YourAddr() (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice([]byte(h.YourIP))
	if !ok {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Addr4 returns the sender's IPv4 address (BEP 7 ipv4), if it sent one.
func (h ExtendedHandshake) Addr4() (netip.Addr, bool) {
	if len(h.IPv4) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte([]byte(h.IPv4))), true
}

// Addr6 returns the sender's IPv6 address (BEP 7 ipv6), if it sent one
// that is IPv6: an IPv4-mapped address there is not.
func (h ExtendedHandshake) Addr6() (netip.Addr, bool) {
	if len(h.IPv6) != 16 {
		return netip.Addr{}, false
	}
	a := netip.AddrFrom16([16]byte([]byte(h.IPv6)))
	if a.Is4In6() {
		return netip.Addr{}, false
	}
	return a, true
}
