package routing

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func mustID(t *testing.T, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// publicAddr returns a random non-exempt IPv4 address.
func publicAddr(r *rand.Rand) netip.Addr {
	for {
		a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		if !BEP42Exempt(a) {
			return a
		}
	}
}

func ap(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, 6881) }

// checkBEP42 verifies what RequireSecureIDs and MaxPerSubnet promise about
// every stored contact, members and replacements alike.
func checkBEP42(t *testing.T, tb *Table) {
	t.Helper()
	for i := range tb.buckets {
		b := &tb.buckets[i]
		for _, e := range slices.Concat(b.entries, b.repl) {
			ip := e.Addr.Addr()
			if tb.requireSecure && !BEP42Exempt(ip) && !IDMatchesIP(e.ID, ip) {
				t.Fatalf("bucket %d holds %v at %v, which BEP 42 forbids", i, e.ID, e.Addr)
			}
		}
		for _, e := range b.entries {
			if p, capped := tb.subnet(e.Addr.Addr()); capped {
				if n := b.countIn(p, -1); n > tb.maxPerSubnet {
					t.Fatalf("bucket %d holds %d members of %v, cap %d", i, n, p, tb.maxPerSubnet)
				}
			}
		}
	}
}

// TestBEP42Vectors checks the test vectors of BEP 42
// (https://www.bittorrent.org/beps/bep_0042.html, "Test vectors"). Only the
// first 21 bits and the last byte of the example IDs are determined by the
// IP and rand; the rest are arbitrary.
func TestBEP42Vectors(t *testing.T) {
	tests := []struct {
		ip      string
		rand    byte
		example string
	}{
		{"124.31.75.21", 1, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"},
		{"21.75.31.124", 86, "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"},
		{"65.23.51.170", 22, "a5d43220bc8f112a3d426c84764f8c2a1150e616"},
		{"84.124.73.14", 65, "1b0321dd1bb1fe518101ceef99462b947a01ff41"},
		{"43.213.53.83", 90, "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"},
		// Not in the BEP, which has no IPv6 vectors: prefixes computed by
		// an independent implementation (anacrolix/dht/v2 SecureNodeId).
		{"2001:db8:1234:5678::1", 0, "77ee10" + "0000000000000000000000000000000000"},
		{"2001:db8:1234:5678:ffff::", 1, "7aee70" + "0000000000000000000000000000000001"},
		{"2001:db8:1234:5678::", 0xfa, "6deed8" + "00000000000000000000000000000000fa"},
	}
	r := newRand(42)
	for i, tc := range tests {
		t.Run(tc.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.ip)
			ex := mustID(t, tc.example)
			if !IDMatchesIP(ex, ip) {
				t.Fatalf("example %v does not match %v", ex, ip)
			}
			for range 8 {
				id := SecureID(ip, tc.rand, r)
				if CommonPrefixLen(id, ex) < 21 || id[19] != tc.rand {
					t.Fatalf("SecureID = %v, want %v's first 21 bits and last byte", id, ex)
				}
				if !IDMatchesIP(id, ip) {
					t.Fatalf("SecureID %v does not match %v", id, ip)
				}
			}
			other := netip.MustParseAddr(tests[(i+1)%5].ip) // the next IPv4 vector
			if IDMatchesIP(ex, other) {
				t.Errorf("example matches another IP %v", other)
			}
			flip := func(bit int) ID {
				id := ex
				id[bit/8] ^= 0x80 >> (bit % 8)
				return id
			}
			if IDMatchesIP(flip(20), ip) {
				t.Error("21st bit is not checked")
			}
			if !IDMatchesIP(flip(21), ip) {
				t.Error("22nd bit is checked")
			}
			// Only r&7 feeds the CRC; the rest of the last byte is free.
			if !IDMatchesIP(flip(8*19), ip) || !IDMatchesIP(flip(8*19+4), ip) {
				t.Error("high bits of the last byte are checked")
			}
			if IDMatchesIP(flip(8*19+7), ip) {
				t.Error("r is not checked")
			}
		})
	}
}

// TestBEP42Masks checks the ID depends on exactly the bits BEP 42's masks
// keep: 0x030f3fff of an IPv4 address, 0x0103070f1f3f7fff of the high 64
// bits of an IPv6 one.
func TestBEP42Masks(t *testing.T) {
	r := newRand(43)
	for range 500 {
		rb := byte(r.Uint32())
		a4 := publicAddr(r)
		id := SecureID(a4, rb, r)
		b := a4.As4()
		b[0] ^= 0xfc
		b[1] ^= 0xf0
		b[2] ^= 0xc0
		if !IDMatchesIP(id, netip.AddrFrom4(b)) {
			t.Fatalf("%v: masked-out bits changed the prefix", a4)
		}
		if !IDMatchesIP(id, netip.AddrFrom16(a4.As16())) {
			t.Fatalf("%v: IPv4-mapped form does not match", a4)
		}
		var a [16]byte
		a[0] = 0x20
		for i := 1; i < 16; i++ {
			a[i] = byte(r.Uint32())
		}
		a6 := netip.AddrFrom16(a)
		id = SecureID(a6, rb, r)
		for i, m := range []byte{0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff} {
			a[i] ^= ^m
		}
		for i := 8; i < 16; i++ {
			a[i] = byte(r.Uint32())
		}
		if !IDMatchesIP(id, netip.AddrFrom16(a)) {
			t.Fatalf("%v: masked-out or low bits changed the prefix", a6)
		}
	}
	// Every kept bit matters, for some r at least.
	base := netip.MustParseAddr("124.31.75.21").As4()
	for i, m := range bep42Mask4 {
		for bit := range 8 {
			if m&(1<<bit) == 0 {
				continue
			}
			b := base
			b[i] ^= 1 << bit
			changed := false
			for rb := range byte(8) {
				changed = changed || !IDMatchesIP(SecureID(netip.AddrFrom4(base), rb, r), netip.AddrFrom4(b))
			}
			if !changed {
				t.Errorf("octet %d bit %d is ignored", i, bit)
			}
		}
	}
	// An invalid address has no valid ID; SecureID still sets r.
	if id := SecureID(netip.Addr{}, 7, r); id[19] != 7 || IDMatchesIP(id, netip.Addr{}) {
		t.Fatalf("invalid address: %v", id)
	}
}

func TestBEP42Exempt(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.1", false},
		{"172.15.255.255", false},
		{"192.168.1.1", true},
		{"192.169.0.1", false},
		{"169.254.3.4", true},
		{"169.255.0.1", false},
		{"127.0.0.1", true},
		{"127.200.1.1", true},
		{"0.0.0.0", true},
		{"1.2.3.4", false},
		{"8.8.8.8", false},
		{"11.0.0.1", false},
		{"::ffff:10.1.2.3", true},
		{"::ffff:1.2.3.4", false},
		{"fc00::1", true},
		{"fdff:1:2::3", true},
		{"fe80::1", true},
		{"febf::1", true},
		{"fec0::1", false},
		{"::1", true},
		{"::", true},
		{"2001:db8::1", false},
		{"2a00:1450::1", false},
	}
	for _, tc := range tests {
		if got := BEP42Exempt(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("BEP42Exempt(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if BEP42Exempt(netip.Addr{}) {
		t.Error("invalid address exempt")
	}
}

// TestSybil: with RequireSecureIDs, an attacker choosing its IDs gets
// nothing into the table, and the honest nodes fare exactly as if the
// attacker were absent.
func TestSybil(t *testing.T) {
	r := newRand(44)
	self := RandomID(r)
	tb := New(self, Config{RequireSecureIDs: true})
	control := New(self, Config{})
	now := t0
	for i := range 10_000 {
		now = now.Add(time.Second)
		sybil := Contact{ID: RandomID(r), Addr: ap(netip.AddrFrom4([4]byte{1, 2, byte(r.Uint32()), byte(r.Uint32())}))}
		if tb.Queried(sybil, now) {
			t.Fatalf("verify=true for sybil %v", sybil)
		}
		if ping := tb.Responded(sybil, now); ping != nil {
			t.Fatalf("sybil %v got ping list %v", sybil, ping)
		}
		if _, ok := tb.Get(sybil.ID); ok {
			t.Fatalf("sybil %v stored", sybil)
		}
		if i%5 == 0 {
			ip := publicAddr(r)
			honest := Contact{ID: SecureID(ip, byte(r.Uint32()), r), Addr: ap(ip)}
			if !tb.Queried(honest, now) && tb.Len() < K {
				t.Fatalf("verify=false for honest %v in a near-empty table", honest)
			}
			if tb.Responded(honest, now); tb.Len() == 0 {
				t.Fatal("honest node refused")
			}
			control.Responded(honest, now)
			// The attacker now claims the honest ID from its own address.
			tb.Responded(Contact{ID: honest.ID, Addr: sybil.Addr}, now)
		}
	}
	checkInvariants(t, tb)
	checkBEP42(t, tb)
	if !slices.Equal(tb.Entries(), control.Entries()) {
		t.Fatal("sybils changed which honest nodes are kept")
	}
	if tb.Len() < 50 {
		t.Fatalf("only %d honest nodes kept", tb.Len())
	}

	// A known node cannot move to an ID its address does not allow: the
	// restart is refused and the old entry stays.
	e := tb.Entries()[0]
	tb.Responded(Contact{ID: RandomID(r), Addr: e.Addr}, now)
	if got, ok := tb.Get(e.ID); !ok || got.Addr != e.Addr {
		t.Fatal("insecure restart evicted a verified node")
	}
	// Our own ID is refused even when it is valid for the sender's IP.
	ip := publicAddr(r)
	own := New(SecureID(ip, 3, r), Config{RequireSecureIDs: true})
	if own.Responded(Contact{ID: own.Self(), Addr: ap(ip)}, now); own.Len() != 0 {
		t.Fatal("own ID stored")
	}
}

// TestExemptBypass: local addresses have no public IP for their ID to
// match and are never capped, so both checks leave them alone.
func TestExemptBypass(t *testing.T) {
	r := newRand(45)
	cfg := Config{RequireSecureIDs: true, MaxPerSubnet: 1}
	for _, prefix := range [][2]byte{{127, 0}, {10, 9}, {192, 168}} {
		tb := New(RandomID(r), cfg)
		plain := New(tb.Self(), Config{})
		for i := range 2000 {
			c := Contact{ID: RandomID(r), Addr: ap(netip.AddrFrom4([4]byte{prefix[0], prefix[1], byte(i >> 8), byte(i)}))}
			if verify := tb.Queried(c, t0); verify != plain.Queried(c, t0) {
				t.Fatalf("%v: Queried %v differs from an unrestricted table", c, verify)
			}
			tb.Responded(c, t0)
			plain.Responded(c, t0)
		}
		if !slices.Equal(tb.Entries(), plain.Entries()) || tb.Len() < 50 {
			t.Fatalf("%d.%d/16: %d entries, unrestricted %d", prefix[0], prefix[1], tb.Len(), plain.Len())
		}
		checkInvariants(t, tb)
	}
}

// TestMaxPerSubnet floods a table from one public /24 (or /64) among nodes
// from distinct subnets.
func TestMaxPerSubnet(t *testing.T) {
	tests := []struct {
		name   string
		cap    int
		secure bool
		flood  func(i int) netip.Addr
	}{
		{"v4/1", 1, false, func(i int) netip.Addr { return netip.AddrFrom4([4]byte{1, 2, 3, byte(i)}) }},
		{"v4/1/secure", 1, true, func(i int) netip.Addr { return netip.AddrFrom4([4]byte{1, 2, 3, byte(i)}) }},
		{"v4/3", 3, false, func(i int) netip.Addr { return netip.AddrFrom4([4]byte{1, 2, 3, byte(i)}) }},
		{"v4-mapped/2", 2, false, func(i int) netip.Addr { return netip.AddrFrom16(netip.AddrFrom4([4]byte{1, 2, 3, byte(i)}).As16()) }},
		{"v6/1", 1, false, func(i int) netip.Addr {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 0, 1, 0, 2, 14: byte(i >> 8), 15: byte(i)})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRand(46)
			self := RandomID(r)
			tb := New(self, Config{MaxPerSubnet: tc.cap, RequireSecureIDs: tc.secure})
			contact := func(a netip.AddrPort) Contact {
				if tc.secure {
					return Contact{ID: SecureID(a.Addr(), byte(r.Uint32()), r), Addr: a}
				}
				return Contact{ID: RandomID(r), Addr: a}
			}
			for i := range 3000 {
				if i%3 == 0 {
					tb.Responded(contact(ap(publicAddr(r))), t0)
				} else {
					// Many ports per host, so no contact restarts another.
					tb.Responded(contact(netip.AddrPortFrom(tc.flood(i%256), uint16(1024+i))), t0)
				}
			}
			checkInvariants(t, tb)
			checkBEP42(t, tb)
			p, _ := tb.subnet(tc.flood(0))
			total := 0
			crowded := -1
			for i := range tb.buckets {
				n := tb.buckets[i].countIn(p, -1)
				total += n
				// A full last bucket may split instead of refusing.
				if n == tc.cap && (len(tb.buckets[i].entries) < tb.k || i < tb.NumBuckets()-1) {
					crowded = i
				}
			}
			if total == 0 || total > tc.cap*tb.NumBuckets() {
				t.Fatalf("%d nodes of the flood in %d buckets", total, tb.NumBuckets())
			}
			if crowded < 0 {
				t.Fatal("setup: no bucket at the cap")
			}
			// A bucket at the cap refuses the subnet: try a sibling of a
			// member there, on an unused port of the same host, with an ID
			// that keeps the member's bucket and BEP 42 prefix.
			var m Entry
			for _, e := range tb.buckets[crowded].entries {
				if inSubnet(e.Addr, p) {
					m = e
				}
			}
			id := m.ID
			id[18] ^= 1
			c := Contact{ID: id, Addr: netip.AddrPortFrom(m.Addr.Addr(), 1)}
			if tb.bucketIndex(id) != crowded {
				t.Fatalf("setup: %v not in bucket %d", id, crowded)
			}
			if tb.Queried(c, t0) {
				t.Fatal("verify=true for a subnet at its cap")
			}
			before := tb.Len()
			if tb.Responded(c, t0); tb.Len() != before {
				t.Fatal("subnet exceeded its cap")
			}
		})
	}
}

// farTable is fullFarBucket on public addresses, each in its own /24.
func farTable(t *testing.T, cfg Config) (*Table, []Contact, *rand.Rand) {
	t.Helper()
	r := newRand(47)
	var self ID
	self[0] = 0x80
	tb := New(self, cfg)
	var members []Contact
	for j := range tb.k {
		c := Contact{ID: withPrefix(self, 0, r), Addr: ap(netip.AddrFrom4([4]byte{100, byte(j), 0, 1}))}
		tb.Responded(c, t0)
		members = append(members, c)
	}
	tb.Responded(Contact{ID: withPrefix(self, 10, r), Addr: ap(netip.AddrFrom4([4]byte{100, 100, 0, 1}))}, t0)
	if tb.NumBuckets() < 2 || len(tb.buckets[0].entries) != tb.k {
		t.Fatalf("setup: %d buckets, %d in bucket 0", tb.NumBuckets(), len(tb.buckets[0].entries))
	}
	return tb, members, r
}

func TestMaxPerSubnetEviction(t *testing.T) {
	tb, members, r := farTable(t, Config{MaxPerSubnet: 1, ReplacementCache: -1})
	self := tb.Self()
	now := t0.Add(time.Hour) // every member questionable
	// members[0]'s subnet is at its cap: a newcomer from it may not
	// displace questionable members of other subnets, nor wait for them.
	same := Contact{ID: withPrefix(self, 0, r), Addr: ap(netip.AddrFrom4([4]byte{100, 0, 0, 2}))}
	if tb.Queried(same, now) {
		t.Fatal("verify=true for a subnet at its cap")
	}
	if ping := tb.Responded(same, now); ping != nil {
		t.Fatalf("ping %v for a node that cannot get in", ping)
	}
	// Once members[0] is bad, its own subnet may replace it.
	tb.Failed(members[0].Addr, now)
	tb.Failed(members[0].Addr, now)
	if !tb.Queried(same, now) {
		t.Fatal("verify=false though a bad node of the subnet is replaceable")
	}
	tb.Responded(same, now)
	if _, ok := tb.Get(same.ID); !ok {
		t.Fatal("bad node of the subnet not replaced")
	}
	if _, ok := tb.Get(members[0].ID); ok {
		t.Fatal("bad node kept")
	}
	checkInvariants(t, tb)
	checkBEP42(t, tb)
}

// TestMaxPerSubnetStaleReplacement: a candidate cached while its subnet had
// room is not promoted once the subnet has filled its share.
func TestMaxPerSubnetStaleReplacement(t *testing.T) {
	tb, members, r := farTable(t, Config{MaxPerSubnet: 1})
	self := tb.Self()
	now := t0.Add(time.Minute)
	cached := Contact{ID: withPrefix(self, 0, r), Addr: ap(netip.AddrFrom4([4]byte{5, 5, 5, 1}))}
	tb.Responded(cached, now)
	if len(tb.buckets[0].repl) != 1 {
		t.Fatal("setup: candidate not cached")
	}
	// members[1] restarts with an ID for another bucket, which frees a slot
	// without promotion; a node from the candidate's subnet takes it.
	tb.Responded(Contact{ID: withPrefix(self, 3, r), Addr: members[1].Addr}, now)
	sibling := Contact{ID: withPrefix(self, 0, r), Addr: ap(netip.AddrFrom4([4]byte{5, 5, 5, 2}))}
	tb.Responded(sibling, now)
	if _, ok := tb.Get(sibling.ID); !ok {
		t.Fatal("setup: sibling not inserted")
	}
	tb.Failed(members[2].Addr, now)
	tb.Failed(members[2].Addr, now)
	if _, ok := tb.Get(cached.ID); ok {
		t.Fatal("stale candidate promoted past its subnet's cap")
	}
	if e, ok := tb.Get(members[2].ID); !ok || e.State(now, 0) != Bad {
		t.Fatal("bad node should stay: no usable candidate")
	}
	checkInvariants(t, tb)
	checkBEP42(t, tb)
}

// TestBEP42RandomOperations is TestRandomOperations with both protections
// on and few subnets, so that refusals, caps, promotions and address reuse
// interleave.
func TestBEP42RandomOperations(t *testing.T) {
	r := newRand(48)
	var self ID
	self[0] = 0x55
	tb := New(self, Config{K: 3, ReplacementCache: 2, RequireSecureIDs: true, MaxPerSubnet: 1})
	var addrs []netip.AddrPort
	for _, net := range [][3]byte{{1, 2, 3}, {1, 2, 4}, {99, 0, 0}, {10, 0, 0}, {127, 0, 0}} {
		for h := range 8 {
			addrs = append(addrs, ap(netip.AddrFrom4([4]byte{net[0], net[1], net[2], byte(h)})))
		}
	}
	for h := range 8 {
		addrs = append(addrs, ap(netip.AddrFrom16([16]byte{0x2a, 0x00, 15: byte(h)})))
	}
	// Each address has a few IDs valid for it; any ID may be tried
	// anywhere.
	var ids []ID
	for _, a := range addrs {
		for range 3 {
			ids = append(ids, SecureID(a.Addr(), byte(r.Uint32()), r))
		}
	}
	now := t0
	for step := range 30_000 {
		now = now.Add(time.Duration(r.IntN(120)) * time.Second)
		ai := r.IntN(len(addrs))
		id := ids[r.IntN(len(ids))]
		if r.IntN(2) == 0 {
			id = ids[3*ai+r.IntN(3)]
		}
		c := Contact{ID: id, Addr: addrs[ai]}
		switch r.IntN(6) {
		case 0, 1:
			tb.Responded(c, now)
		case 2:
			tb.Queried(c, now)
		case 3, 4:
			tb.Failed(c.Addr, now)
		case 5:
			if r.IntN(4) == 0 {
				tb.Remove(c.ID)
			}
			tb.Closest(c.ID, 5, now)
		}
		if step%97 == 0 {
			checkInvariants(t, tb)
			checkBEP42(t, tb)
		}
	}
	checkInvariants(t, tb)
	checkBEP42(t, tb)
	if tb.Len() == 0 {
		t.Fatal("nothing stored")
	}
}
