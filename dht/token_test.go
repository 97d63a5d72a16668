package dht

import (
	"net/netip"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	a := netip.MustParseAddr("127.0.30.2")
	b := netip.MustParseAddr("127.0.30.3")

	t.Run("bound to the IP", func(t *testing.T) {
		tk := newTokens(t0)
		tok := tk.issue(a)
		if len(tok) != tokenLen {
			t.Fatalf("token of %d bytes, want %d", len(tok), tokenLen)
		}
		if !tk.valid(tok, a) {
			t.Fatal("token rejected for the IP it was issued to")
		}
		if tk.valid(tok, b) {
			t.Fatal("token accepted from another IP")
		}
		if tk.issue(b) == tok {
			t.Fatal("two IPs got the same token")
		}
		if tk.issue(a) != tok {
			t.Fatal("issue is not deterministic within one secret")
		}
	})

	t.Run("lives one rotation, not two", func(t *testing.T) {
		tk := newTokens(t0)
		tok := tk.issue(a)
		tk.rotate(t0.Add(TokenRotation))
		if tk.issue(a) == tok {
			t.Fatal("rotation did not change the secret")
		}
		if !tk.valid(tok, a) {
			t.Fatal("token rejected after one rotation")
		}
		if tk.valid(tok, b) {
			t.Fatal("token accepted from another IP after one rotation")
		}
		tk.rotate(t0.Add(2 * TokenRotation))
		if tk.valid(tok, a) {
			t.Fatal("token accepted after two rotations")
		}
	})

	t.Run("rotate before the period is a no-op", func(t *testing.T) {
		tk := newTokens(t0)
		tok := tk.issue(a)
		for _, d := range []time.Duration{0, time.Second, TokenRotation / 2, TokenRotation - time.Nanosecond} {
			tk.rotate(t0.Add(d))
			if got := tk.issue(a); got != tok {
				t.Fatalf("rotate at +%v changed the secret", d)
			}
		}
		// The early calls must not have reset the clock either: one more
		// call at exactly +TokenRotation rotates, and a second rotation
		// is due TokenRotation after that, not before.
		tk.rotate(t0.Add(TokenRotation))
		tok2 := tk.issue(a)
		if tok2 == tok {
			t.Fatal("no rotation at +TokenRotation after early rotate calls")
		}
		tk.rotate(t0.Add(2*TokenRotation - time.Second))
		if !tk.valid(tok, a) || tk.issue(a) != tok2 {
			t.Fatal("rotated again before a full period had passed")
		}
	})

	t.Run("wrong length rejected", func(t *testing.T) {
		tk := newTokens(t0)
		tok := tk.issue(a)
		for _, bad := range []string{"", tok[:tokenLen-1], tok + "x", tok + tok, "\x00\x00\x00\x00\x00\x00\x00\x00"} {
			if tk.valid(bad, a) {
				t.Errorf("token %q accepted", bad)
			}
		}
	})

	t.Run("IPv4-mapped equals IPv4", func(t *testing.T) {
		tk := newTokens(t0)
		mapped := netip.AddrFrom16(a.As16())
		if !mapped.Is4In6() {
			t.Fatal("test setup: not a mapped address")
		}
		if tk.issue(a) != tk.issue(mapped) {
			t.Fatal("mapped and plain IPv4 get different tokens")
		}
		if !tk.valid(tk.issue(mapped), a) || !tk.valid(tk.issue(a), mapped) {
			t.Fatal("token not accepted across mapped/plain forms")
		}
		v6 := netip.MustParseAddr("::1")
		if tk.valid(tk.issue(a), v6) {
			t.Fatal("IPv4 token accepted from IPv6")
		}
	})
}
