package dht

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"node/routing"
)

func psHash(i int) routing.ID {
	var id routing.ID
	id[0], id[19] = 0xab, byte(i)
	return id
}

func psPeer(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(6000+i))
}

func TestPeerStoreBounds(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, order := range []string{"hash-major", "peer-major"} {
		t.Run(order, func(t *testing.T) {
			s := newPeerStore(4, 3, time.Hour)
			step := 0
			add := func(h, p int) {
				s.add(psHash(h), psPeer(p), t0.Add(time.Duration(step)*time.Second))
				step++
				if nh, np := s.counts(); nh > 4 || np > 12 {
					t.Fatalf("after adding %d/%d: counts (%d, %d), want at most (4, 12)", h, p, nh, np)
				}
			}
			for i := 0; i < 10; i++ {
				for j := 0; j < 10; j++ {
					if order == "hash-major" {
						add(i, j)
					} else {
						add(j, i)
					}
				}
			}
			// Hash-major: hashes 6-9 keep their last three peers. Peer-major:
			// each hash is evicted before it comes round again, so hashes
			// 6-9 hold only the last round's peer.
			want := []netip.AddrPort{psPeer(9), psPeer(8), psPeer(7)}
			if order == "peer-major" {
				want = want[:1]
			}
			if nh, np := s.counts(); nh != 4 || np != 4*len(want) {
				t.Fatalf("counts (%d, %d), want (4, %d)", nh, np, 4*len(want))
			}
			now := t0.Add(time.Duration(step) * time.Second)
			for h := 0; h < 10; h++ {
				got := s.get(psHash(h), now, 100)
				switch {
				case h >= 6 && !slices.Equal(got, want):
					t.Errorf("hash %d: got %v, want %v", h, got, want)
				case h < 6 && got != nil:
					t.Errorf("hash %d should have been evicted, got %v", h, got)
				}
			}
		})
	}
}

func TestPeerStoreGetOrderAndMax(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newPeerStore(16, 16, time.Hour)
	ih := psHash(1)
	for i := 0; i < 5; i++ {
		s.add(ih, psPeer(i), t0.Add(time.Duration(i)*time.Minute))
	}
	now := t0.Add(10 * time.Minute)
	for max := 0; max <= 7; max++ {
		got := s.get(ih, now, max)
		var want []netip.AddrPort
		for i := 4; i >= 0 && len(want) < max; i-- {
			want = append(want, psPeer(i))
		}
		if !slices.Equal(got, want) {
			t.Errorf("get(max=%d) = %v, want %v", max, got, want)
		}
	}
	if got := s.get(psHash(2), now, 10); got != nil {
		t.Errorf("unknown hash: got %v", got)
	}
	// Reads do not disturb the store.
	if nh, np := s.counts(); nh != 1 || np != 5 {
		t.Fatalf("counts (%d, %d) after reads, want (1, 5)", nh, np)
	}
}

func TestPeerStoreTTL(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	ttl := 30 * time.Minute
	s := newPeerStore(16, 16, ttl)
	ih := psHash(1)
	s.add(ih, psPeer(0), t0)
	s.add(ih, psPeer(1), t0.Add(10*time.Minute))
	s.add(ih, psPeer(2), t0.Add(20*time.Minute))

	if got := s.get(ih, t0.Add(ttl), 10); len(got) != 3 {
		t.Fatalf("at exactly ttl: got %v, want all 3", got)
	}
	got := s.get(ih, t0.Add(35*time.Minute), 10)
	if want := []netip.AddrPort{psPeer(2), psPeer(1)}; !slices.Equal(got, want) {
		t.Fatalf("at +35m: got %v, want %v", got, want)
	}
	if nh, np := s.counts(); nh != 1 || np != 2 {
		t.Fatalf("expired peer not removed: counts (%d, %d), want (1, 2)", nh, np)
	}
	if got := s.get(ih, t0.Add(55*time.Minute), 10); len(got) != 0 {
		t.Fatalf("at +55m: got %v, want none", got)
	}
	if nh, np := s.counts(); nh != 0 || np != 0 {
		t.Fatalf("all expired: counts (%d, %d), want (0, 0)", nh, np)
	}
	// A hash emptied by expiry comes back on the next announce.
	s.add(ih, psPeer(3), t0.Add(time.Hour))
	if got := s.get(ih, t0.Add(time.Hour), 10); !slices.Equal(got, []netip.AddrPort{psPeer(3)}) {
		t.Fatalf("after re-announce: got %v", got)
	}
}

func TestPeerStoreRefresh(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	ttl := 30 * time.Minute

	t.Run("re-add renews the ttl and the order", func(t *testing.T) {
		s := newPeerStore(16, 16, ttl)
		ih := psHash(1)
		s.add(ih, psPeer(0), t0)
		s.add(ih, psPeer(1), t0.Add(time.Minute))
		s.add(ih, psPeer(0), t0.Add(20*time.Minute))
		if got, want := s.get(ih, t0.Add(20*time.Minute), 10), []netip.AddrPort{psPeer(0), psPeer(1)}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if got, want := s.get(ih, t0.Add(40*time.Minute), 10), []netip.AddrPort{psPeer(0)}; !slices.Equal(got, want) {
			t.Fatalf("at +40m: got %v, want %v (re-added peer must survive)", got, want)
		}
		if _, np := s.counts(); np != 1 {
			t.Fatalf("re-adding duplicated the peer: %d peers", np)
		}
	})

	t.Run("re-add protects from eviction", func(t *testing.T) {
		s := newPeerStore(16, 3, ttl)
		ih := psHash(1)
		for i := 0; i < 3; i++ {
			s.add(ih, psPeer(i), t0.Add(time.Duration(i)*time.Second))
		}
		s.add(ih, psPeer(0), t0.Add(3*time.Second))
		s.add(ih, psPeer(3), t0.Add(4*time.Second))
		got := s.get(ih, t0.Add(5*time.Second), 10)
		if want := []netip.AddrPort{psPeer(3), psPeer(0), psPeer(2)}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})

	t.Run("announcing to a hash protects it from eviction", func(t *testing.T) {
		s := newPeerStore(2, 3, ttl)
		s.add(psHash(0), psPeer(0), t0)
		s.add(psHash(1), psPeer(1), t0)
		s.add(psHash(0), psPeer(2), t0)
		s.add(psHash(2), psPeer(3), t0)
		if s.get(psHash(0), t0, 10) == nil || s.get(psHash(2), t0, 10) == nil || s.get(psHash(1), t0, 10) != nil {
			t.Fatal("the least recently announced hash was not the one evicted")
		}
	})
}

func TestPeerStoreDistinctHashes(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newPeerStore(8, 8, time.Hour)
	for h := 0; h < 3; h++ {
		for p := 0; p <= h; p++ {
			s.add(psHash(h), psPeer(10*h+p), t0)
		}
	}
	for h := 0; h < 3; h++ {
		got := s.get(psHash(h), t0, 100)
		if len(got) != h+1 {
			t.Fatalf("hash %d: %d peers, want %d", h, len(got), h+1)
		}
		for _, p := range got {
			if int(p.Port())-6000 < 10*h || int(p.Port())-6000 > 10*h+h {
				t.Fatalf("hash %d: peer %v belongs to another hash", h, p)
			}
		}
	}
}
