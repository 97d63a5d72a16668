//go:build race

package dht

// raceEnabled skips allocation counts, which the race detector inflates.
const raceEnabled = true
