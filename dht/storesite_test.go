package dht

import (
	"net/netip"
	"testing"
	"time"

	"node/routing"
)

// v6In48 is an address of the /64 number i inside 2a00:1:2::/48.
func v6In48(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x2a, 0, 0, 1, 0, 2, 0x33, byte(i), 15: 1})
}

// Many /64s of one IPv6 allocation (here 64 of one /56, a residential
// one), each within its own bounds, announce into a full swarm of honest
// peers: the allocation holds at most maxPeersPerNet48 of the swarm, and
// so displaces at most that many honest peers. Nor can its 256 /64s flush
// the store with new swarms.
func TestStoreOneV6AllocationCannotFillSwarm(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newPeerStore(DefaultMaxInfoHashes, DefaultMaxPeersPerInfoHash, DefaultPeerTTL)
	ih := routing.ID{1}
	for i := 0; i < DefaultMaxPeersPerInfoHash; i++ {
		s.add(ih, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 6881), t0)
	}
	for i := 0; i < 64; i++ {
		for p := 0; p < maxPeersPerSource; p++ {
			s.add(ih, netip.AddrPortFrom(v6In48(i), uint16(1000+p)), t0.Add(time.Second))
		}
	}
	honest, site := 0, 0
	for _, p := range s.get(ih, t0.Add(2*time.Second), 1000) {
		if p.Addr().Is4() {
			honest++
		} else {
			site++
		}
	}
	if site > maxPeersPerNet48 || honest < DefaultMaxPeersPerInfoHash-maxPeersPerNet48 {
		t.Errorf("64 /64s of one /48 hold %d peers of a full swarm (bound %d); %d of %d honest peers left",
			site, maxPeersPerNet48, honest, DefaultMaxPeersPerInfoHash)
	}

	for i := 0; i < 256; i++ {
		for j := 0; j < maxInsertsPerSource; j++ {
			s.add(routing.ID{2, byte(i), byte(j)}, netip.AddrPortFrom(v6In48(i), 1), t0.Add(time.Second))
		}
	}
	if h, _ := s.counts(); h > 1+maxInsertsPerNet48 {
		t.Errorf("one /48 made %d swarms within a second, bound %d", h-1, maxInsertsPerNet48)
	}
	if _, ok := s.hashes[ih]; !ok {
		t.Error("one /48 flushed the store")
	}
}

// In a full swarm a new entry displaces one of the source that holds the
// most, not the oldest peer: sources announcing at once (each within its
// bounds, none sharing a /48) displace their own before the lone peers.
func TestStoreFullSwarmEvictsBiggestSource(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	const size = 16
	s := newPeerStore(16, size, time.Hour)
	ih := routing.ID{1}
	for i := 0; i < size; i++ {
		s.add(ih, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 6881), t0)
	}
	// 8 hosts of 4 ports each, every host in its own /48.
	for i := 0; i < 8; i++ {
		a := netip.AddrFrom16([16]byte{0x2a, 0, byte(i), 15: 1})
		for p := 0; p < maxPeersPerSource; p++ {
			s.add(ih, netip.AddrPortFrom(a, uint16(1000+p)), t0.Add(time.Second))
		}
	}
	honest := 0
	for _, p := range s.get(ih, t0.Add(time.Second), 100) {
		if p.Addr().Is4() {
			honest++
		}
	}
	// Each host's first port displaces an honest peer (all hold one); its
	// next ports displace its own or another host's.
	if honest != size-8 {
		t.Errorf("8 hosts of %d ports each in a full swarm of %d: %d honest peers left, want %d", maxPeersPerSource, size, honest, size-8)
	}
}
