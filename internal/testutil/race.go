//go:build race

package testutil

// Race is whether the race detector is on: tests scale floods down and
// skip allocation counts under it.
const Race = true
