package krpc

// Internals the external tests (package krpc_test, which may import
// internal/adversary: it imports krpc) need.

type FakeClock = fakeClock

var NewFakeClock = newFakeClock
