package dht

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"net/netip"
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
// nothing per querier needs to be stored. Owned by the node loop.
type tokens struct {
	cur, prev [secretLen]byte
	rotated   time.Time
}

func newTokens(now time.Time) *tokens {
	t := &tokens{rotated: now}
	_, _ = rand.Read(t.cur[:])
	t.prev = t.cur
	return t
}

// rotate replaces the secret once TokenRotation has passed.
func (t *tokens) rotate(now time.Time) {
	if now.Sub(t.rotated) < TokenRotation {
		return
	}
	t.prev = t.cur
	_, _ = rand.Read(t.cur[:])
	t.rotated = now
}

func (t *tokens) issue(ip netip.Addr) string {
	return string(tokenFor(&t.cur, ip))
}

func (t *tokens) valid(tok string, ip netip.Addr) bool {
	if len(tok) != tokenLen {
		return false
	}
	b := []byte(tok)
	return subtle.ConstantTimeCompare(b, tokenFor(&t.cur, ip)) == 1 ||
		subtle.ConstantTimeCompare(b, tokenFor(&t.prev, ip)) == 1
}

func tokenFor(secret *[secretLen]byte, ip netip.Addr) []byte {
	h := sha1.New()
	h.Write(secret[:])
	ip16 := ip.Unmap().As16()
	h.Write(ip16[:])
	return h.Sum(nil)[:tokenLen]
}
