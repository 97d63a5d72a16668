package tracker

import (
	"sync/atomic"
	"testing"
	"time"

	"node/internal/testutil"
)

// TestSetPort: a port set while the announcer runs is what the next
// announces report; 0 goes back to the configured one.
func TestSetPort(t *testing.T) {
	tr := newFakeHTTP(t, seed1)
	var left atomic.Int64
	left.Store(100)
	a := testAnnouncer([][]string{{tr.announceURL()}}, &left)
	a.maxInterval = 20 * time.Millisecond
	r := start(t, a)
	r.next(t)
	ports := func() []string {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		var out []string
		for _, q := range tr.requests {
			out = append(out, q.Get("port"))
		}
		return out
	}
	if p := ports(); p[0] != "6881" {
		t.Fatalf("first announce port %s, want the configured 6881", p[0])
	}
	a.SetPort(41001)
	testutil.WaitFor(t, 5*time.Second, "an announce of the set port", func() bool {
		p := ports()
		return p[len(p)-1] == "41001"
	})
	a.SetPort(0)
	testutil.WaitFor(t, 5*time.Second, "the configured port again", func() bool {
		p := ports()
		return p[len(p)-1] == "6881"
	})
}
