package routing

// BEP 42 (DHT security extension): https://www.bittorrent.org/beps/bep_0042.html
//
// A node ID must start with 21 bits derived from the node's IP address, so
// a host can no longer pick IDs at will and surround a target with its own
// nodes; it gets 8 possible prefixes per address (one per value of r).

import (
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"time"
)

// The masks keep only the low bits of the high octets: owning many
// addresses in one block yields many prefixes, but owning one address in
// each of many /8s yields few more than one block would.
var (
	bep42Mask4 = [4]byte{0x03, 0x0f, 0x3f, 0xff}                         // 0x030f3fff
	bep42Mask6 = [8]byte{0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff} // 0x0103070f1f3f7fff, over the high 64 bits
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bep42CRC is crc32c((ip & mask) | (r&7)<<(bits-3)) over the big-endian
// masked address; ok is false for an invalid ip.
func bep42CRC(ip netip.Addr, r byte) (crc uint32, ok bool) {
	ip = ip.Unmap() // an IPv4-mapped address is the IPv4 node it names
	var buf [8]byte
	var in []byte
	switch {
	case ip.Is4():
		a := ip.As4()
		for i := range bep42Mask4 {
			buf[i] = a[i] & bep42Mask4[i]
		}
		in = buf[:4]
	case ip.Is6():
		a := ip.As16()
		for i := range bep42Mask6 {
			buf[i] = a[i] & bep42Mask6[i]
		}
		in = buf[:8]
	default:
		return 0, false
	}
	in[0] |= (r & 7) << 5
	return crc32.Checksum(in, castagnoli), true
}

// SecureID returns a BEP 42 node ID for ip: the first 21 bits come from
// the CRC of ip and r&7, the last byte is r, and every other bit is drawn
// from rnd, which must not be nil. For an invalid ip, which no peer can
// check an ID against, only the last byte is fixed.
func SecureID(ip netip.Addr, r byte, rnd *rand.Rand) ID {
	id := RandomID(rnd)
	if crc, ok := bep42CRC(ip, r); ok {
		id[0] = byte(crc >> 24)
		id[1] = byte(crc >> 16)
		id[2] = byte(crc>>8)&0xf8 | id[2]&7
	}
	id[IDLen-1] = r
	return id
}

// IDMatchesIP reports whether id is valid for ip per BEP 42: its first 21
// bits are those SecureID derives from ip and id's last byte. It applies
// no exemption (see BEP42Exempt) and is false for an invalid ip.
func IDMatchesIP(id ID, ip netip.Addr) bool {
	crc, ok := bep42CRC(ip, id[IDLen-1])
	return ok &&
		id[0] == byte(crc>>24) &&
		id[1] == byte(crc>>16) &&
		id[2]&0xf8 == byte(crc>>8)&0xf8
}

// BEP42Exempt reports whether nodes at ip are exempt from BEP 42: those on
// local networks (10/8, 172.16/12, 192.168/16, 169.254/16, 127/8 and their
// IPv6 counterparts fc00::/7, fe80::/10, ::1) and the unspecified address.
// Such a node cannot know the public address its ID should match, and
// addresses there are too cheap to ration, so neither the ID check nor
// MaxPerSubnet applies to them.
func BEP42Exempt(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()
}

// subnet returns the network whose share of a bucket MaxPerSubnet caps
// (the /24 or /64 of ip), or false if ip is not capped.
func (t *Table) subnet(ip netip.Addr) (netip.Prefix, bool) {
	if t.maxPerSubnet <= 0 || !ip.IsValid() || BEP42Exempt(ip) {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p, true
}

func inSubnet(a netip.AddrPort, p netip.Prefix) bool {
	ip := a.Addr()
	return !BEP42Exempt(ip) && p.Contains(ip.Unmap())
}

// countIn is the number of members of b in p, not counting the one at
// index skip (-1: none), which is about to leave.
func (b *bucket) countIn(p netip.Prefix, skip int) int {
	n := 0
	for i := range b.entries {
		if i != skip && inSubnet(b.entries[i].Addr, p) {
			n++
		}
	}
	return n
}

// worstBadIn is worstBad restricted to members in p: the only slots a
// newcomer from a subnet at its cap may take, as that keeps the subnet's
// share unchanged.
func (b *bucket) worstBadIn(p netip.Prefix, now time.Time, maxFailures int) int {
	w := -1
	for i := range b.entries {
		e := &b.entries[i]
		if !inSubnet(e.Addr, p) || e.State(now, maxFailures) != Bad {
			continue
		}
		if w < 0 || e.LastResponse.Before(b.entries[w].LastResponse) {
			w = i
		}
	}
	return w
}

// crowded reports whether c's subnet already has its share of b and no bad
// node of its own to displace, so that insert would refuse c. If b is full
// and may split, only members sharing c's prefix length with self are sure
// to stay in c's bucket, so only they count: Queried then errs towards a
// wasted ping rather than ignoring a node the table would take.
func (t *Table) crowded(b *bucket, c Contact, splits bool, now time.Time) bool {
	p, capped := t.subnet(c.Addr.Addr())
	if !capped {
		return false
	}
	cpl := CommonPrefixLen(t.self, c.ID)
	n := 0
	for _, m := range b.entries {
		if inSubnet(m.Addr, p) && (!splits || CommonPrefixLen(t.self, m.ID) == cpl) {
			n++
		}
	}
	return n >= t.maxPerSubnet && b.worstBadIn(p, now, t.maxFailures) < 0
}
