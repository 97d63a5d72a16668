package dht

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// TokenRotation is how often the token secret changes. The previous secret
// stays valid, so a token lives between 5 and 10 minutes (BEP 5: "tokens up
// to ten minutes old are accepted").
const TokenRotation = 5 * time.Minute

const (
	secretLen = 16
	tokenLen  = 8
)

// tokens issues and checks announce tokens: a hash of a rotating secret and
// the querier's IP, so a token is useless from any other address and
// nothing per querier needs to be stored. The loop rotates the secrets;
// queries are answered on the socket's reader, which reads them through an
// atomic pointer to an immutable pair.
type tokens struct {
	s       atomic.Pointer[secrets]
	rotated time.Time // owned by the loop
}

// secrets is one generation of the token secrets; it is never modified
// once published, so a pointer to it also names the generation.
type secrets struct {
	cur, prev [secretLen]byte
}

func newTokens(now time.Time) *tokens {
	t := &tokens{rotated: now}
	s := new(secrets)
	_, _ = rand.Read(s.cur[:])
	s.prev = s.cur
	t.s.Store(s)
	return t
}

// rotate replaces the secret once TokenRotation has passed. Only the loop
// calls it.
func (t *tokens) rotate(now time.Time) {
	if now.Sub(t.rotated) < TokenRotation {
		return
	}
	s := &secrets{prev: t.s.Load().cur}
	_, _ = rand.Read(s.cur[:])
	t.s.Store(s)
	t.rotated = now
}

func (t *tokens) issue(ip netip.Addr) string {
	tok := tokenFor(&t.s.Load().cur, ip)
	return string(tok[:])
}

func (t *tokens) valid(tok string, ip netip.Addr) bool {
	if len(tok) != tokenLen {
		return false
	}
	s := t.s.Load()
	cur, prev := tokenFor(&s.cur, ip), tokenFor(&s.prev, ip)
	b := []byte(tok)
	return subtle.ConstantTimeCompare(b, cur[:]) == 1 ||
		subtle.ConstantTimeCompare(b, prev[:]) == 1
}

func tokenFor(secret *[secretLen]byte, ip netip.Addr) [tokenLen]byte {
	var in [secretLen + 16]byte
	copy(in[:], secret[:])
	ip16 := ip.Unmap().As16()
	copy(in[secretLen:], ip16[:])
	h := sha1.Sum(in[:])
	return [tokenLen]byte(h[:tokenLen])
}

// tokenCache remembers recently issued tokens, so that answering the same
// querier again costs neither a hash nor an allocation. Direct-mapped;
// used by one goroutine (the socket's reader). It starts with
// minTokenCacheSlots and grows fourfold, keeping what it held, each
// time it has missed twice as often as it has slots since its last
// growth, up to tokenCacheSlots: a node that few query keeps a few
// hundred bytes, not the full 48 KiB.
type tokenCache struct {
	slots  []tokenSlot
	bits   uint // len(slots) is 1<<bits
	misses int  // since the last growth
}

type tokenSlot struct {
	ip  netip.Addr
	gen *secrets
	tok string
}

const (
	tokenCacheSlots    = 1024 // a power of two
	minTokenCacheSlots = 16   // a power of two
)

// slot is ip's slot.
func (c *tokenCache) slot(ip netip.Addr) *tokenSlot {
	a16 := ip.Unmap().As16()
	h := uint32(a16[12])<<24 | uint32(a16[13])<<16 | uint32(a16[14])<<8 | uint32(a16[15])
	h ^= uint32(a16[7]) | uint32(a16[6])<<8 // spread IPv6 /64s too
	return &c.slots[(h*2654435761)>>(32-c.bits)]
}

// issue returns t's current token for ip.
func (c *tokenCache) issue(t *tokens, ip netip.Addr) string {
	s := t.s.Load()
	if n := len(c.slots); n == 0 || n < tokenCacheSlots && c.misses >= 2*n {
		old := c.slots
		n = max(minTokenCacheSlots, min(4*n, tokenCacheSlots))
		c.slots, c.bits, c.misses = make([]tokenSlot, n), uint(bits.TrailingZeros(uint(n))), 0
		for _, o := range old {
			if o.gen != nil {
				*c.slot(o.ip) = o
			}
		}
	}
	slot := c.slot(ip)
	if slot.gen != s || slot.ip != ip {
		c.misses++
		tok := tokenFor(&s.cur, ip)
		slot.ip, slot.gen, slot.tok = ip, s, string(tok[:])
	}
	return slot.tok
}
