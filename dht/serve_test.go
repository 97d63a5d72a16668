package dht

import (
	"context"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"node/internal/testutil"
	"node/routing"
)

// A querier is noted once per queriedNoteEvery, however often it queries,
// even among many others.
func TestNoteCacheDeduplicates(t *testing.T) {
	nc := &noteCache{seed: maphash.MakeSeed()}
	r := rand.New(rand.NewPCG(1, 2))
	var cs []routing.Contact
	for i := range 64 {
		cs = append(cs, routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6881)})
	}
	t0 := time.Now()
	for _, c := range cs {
		h, due := nc.due(c, t0)
		if !due {
			t.Fatalf("%v not due at first sight", c)
		}
		nc.record(h, t0)
	}
	for round := 1; round < 10; round++ {
		for _, c := range cs {
			if _, due := nc.due(c, t0.Add(time.Duration(round)*time.Second)); due {
				t.Fatalf("%v due again after %d s", c, round)
			}
		}
	}
	for _, c := range cs {
		if _, due := nc.due(c, t0.Add(queriedNoteEvery)); !due {
			t.Fatalf("%v not due after queriedNoteEvery", c)
		}
	}
}

// The view answers Closest exactly as the table does.
func TestViewClosestMatchesTable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	now := time.Now()
	for _, size := range []int{0, 1, 5, 8, 9, 50, 2000} {
		tab := routing.New(routing.RandomID(r), routing.Config{})
		for i := range size {
			tab.Responded(routing.Contact{ID: routing.RandomID(r), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 6881)}, now)
		}
		v := newView(tab.Entries(), now)
		for range 200 {
			target := routing.RandomID(r)
			if r.IntN(4) == 0 { // near self, where the table is dense
				target = tab.Self()
				target[19] ^= byte(r.IntN(256))
			}
			for _, k := range []int{1, 3, routing.K, 20} {
				want := tab.Closest(target, k, now)
				got := v.closest(nil, target, k)
				if len(got) != len(want) {
					t.Fatalf("size %d k %d: %d contacts, want %d", size, k, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("size %d k %d: contact %d is %v, want %v", size, k, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// Steady-state answers cost no allocation: a ping and a get_peers from
// known queriers, through the real read path.
func TestServeDoesNotAllocate(t *testing.T) {
	if testing.Short() || testutil.Race {
		t.Skip("allocation counts need a normal build")
	}
	f := newServeQueryFixture()
	for _, c := range serveQueryCases[:2] {
		mc := newMemConn(f.queries(t, c), f.froms)
		const timeout = 100 * time.Millisecond
		ticks := make(chan tickReport)
		n, err := New(Config{Conn: mc, QueryTimeout: timeout, TickInterval: 100 * time.Millisecond,
			afterTick: func(r tickReport) {
				select {
				case ticks <- r:
				default:
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		mc.run(t, 10*len(f.froms))
		// The warm-up's queriers got verification pings, which nobody
		// answers: wait for them to time out before counting, or their
		// timeouts land in the count in proportion to how slowly the
		// machine runs the queries. Once Stats, queued behind the
		// warm-up's events, returns, every ping has started; a tick that
		// finds nothing running comes after they have all ended.
		if _, err := n.Stats(context.Background()); err != nil {
			t.Fatal(err)
		}
		for idle := false; !idle; {
			select {
			case r := <-ticks:
				idle = !r.busy
			case <-time.After(10 * time.Second):
				t.Fatal("the verification pings did not end")
			}
		}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		const queries = 200000
		mc.run(t, queries)
		runtime.ReadMemStats(&m1)
		n.Close()
		// A few allocations come from the node's other goroutines (the
		// maintenance tick, ping timeouts); per query it must be zero.
		per := float64(m1.Mallocs-m0.Mallocs) / queries
		t.Logf("%s: %.5f allocations per query", c.name, per)
		if per > 0.001 {
			t.Errorf("%s: %.4f allocations per query", c.name, per)
		}
	}
}
