// Package testutil holds the few helpers that tests of several packages
// share and that are not attacks (those are internal/adversary): waiting
// for a condition, knowing whether the race detector is on, lifting the
// open-file limit, writing seeded random files, running a program until
// the test ends (start, output, stop by PID, wait with a deadline), and
// running Debian's opentracker on loopback. It imports nothing of node, so
// every package's in-package tests can use it.
package testutil

import (
	"context"
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test after d with what
// (the condition that did not come about).
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitQuiet returns once count, read every every, has grown by at most
// slack since the reading before, or when ctx ends: a server under a
// flood has read what reached it when its packet count moves only by what
// its well-behaved clients still send. The step is a measurement window,
// not a guess at how long something takes.
func WaitQuiet(ctx context.Context, count func() uint64, every time.Duration, slack uint64) {
	t := time.NewTicker(every)
	defer t.Stop()
	for last := uint64(0); ; {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := count()
		if n-last <= slack {
			return
		}
		last = n
	}
}
