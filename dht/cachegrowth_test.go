package dht

import (
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"node/routing"
)

// The token cache starts at minTokenCacheSlots, grows with the queriers it
// meets up to tokenCacheSlots and no further, and hands out the tokens
// tokens.issue would throughout.
func TestTokenCacheGrowsToBound(t *testing.T) {
	toks := newTokens(time.Now())
	var c tokenCache
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range 4 {
		if got := c.issue(toks, ip(i)); got != toks.issue(ip(i)) {
			t.Fatalf("token for %v: %x, want %x", ip(i), got, toks.issue(ip(i)))
		}
	}
	if len(c.slots) != minTokenCacheSlots {
		t.Fatalf("%d slots for 4 queriers, want %d", len(c.slots), minTokenCacheSlots)
	}
	for i := range 100_000 {
		if got := c.issue(toks, ip(i%20_000)); got != toks.issue(ip(i%20_000)) {
			t.Fatalf("token for %v wrong after growth", ip(i))
		}
		if len(c.slots) > tokenCacheSlots {
			t.Fatalf("%d slots, over the bound %d", len(c.slots), tokenCacheSlots)
		}
	}
	if len(c.slots) != tokenCacheSlots {
		t.Fatalf("%d slots after 20,000 queriers, want %d", len(c.slots), tokenCacheSlots)
	}
}

// The note cache starts at minNoteCacheSets, grows up to noteCacheSets
// and no further, and keeps what it noted as it grows.
func TestNoteCacheGrowsToBound(t *testing.T) {
	nc := &noteCache{seed: maphash.MakeSeed()}
	r := rand.New(rand.NewPCG(5, 6))
	t0 := time.Now()
	contact := func() routing.Contact {
		return routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(256)), byte(r.IntN(256))}), 6881)}
	}
	first := contact()
	h, _ := nc.due(first, t0)
	nc.record(h, t0)
	if len(nc.sets) != minNoteCacheSets {
		t.Fatalf("%d sets after one note, want %d", len(nc.sets), minNoteCacheSets)
	}
	// Growth keeps the notes: the first querier stays noted while the
	// cache grows through its first sizes (before it is full enough to
	// evict).
	for range 2 * minNoteCacheSets * noteCacheWays {
		h, _ := nc.due(contact(), t0)
		nc.record(h, t0)
	}
	if len(nc.sets) <= minNoteCacheSets {
		t.Fatalf("%d sets: did not grow", len(nc.sets))
	}
	if _, due := nc.due(first, t0.Add(time.Second)); due {
		t.Fatal("a note was lost as the cache grew")
	}
	for range 100_000 {
		h, _ := nc.due(contact(), t0)
		nc.record(h, t0)
		if len(nc.sets) > noteCacheSets {
			t.Fatalf("%d sets, over the bound %d", len(nc.sets), noteCacheSets)
		}
	}
	if len(nc.sets) != noteCacheSets {
		t.Fatalf("%d sets after 100,000 queriers, want %d", len(nc.sets), noteCacheSets)
	}
}
