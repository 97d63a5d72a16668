package peer

import (
	"net/netip"
	"sync"
	"time"
)

// recentAddrs remembers addresses for a while: what the last dial to each
// taught us (TCP alone, plaintext alone). Dials run on their own
// goroutines, so it has its own lock. The zero value is empty.
type recentAddrs struct {
	mu sync.Mutex
	at map[netip.AddrPort]time.Time // when each was added
}

// has says whether a was added less than ttl before now; an older entry
// is forgotten.
func (r *recentAddrs) has(a netip.AddrPort, now time.Time, ttl time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[a]
	if ok && now.Sub(at) >= ttl {
		delete(r.at, a)
		ok = false
	}
	return ok
}

// add remembers a from now on; when max are remembered already, the
// oldest goes.
func (r *recentAddrs) add(a netip.AddrPort, now time.Time, max int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = make(map[netip.AddrPort]time.Time)
	}
	if _, ok := r.at[a]; !ok && len(r.at) >= max {
		var oldest netip.AddrPort
		var oldestAt time.Time
		for k, t := range r.at {
			if oldestAt.IsZero() || t.Before(oldestAt) {
				oldest, oldestAt = k, t
			}
		}
		delete(r.at, oldest)
	}
	r.at[a] = now
}

func (r *recentAddrs) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.at)
}
