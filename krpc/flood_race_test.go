//go:build race

package krpc

// raceEnabled scales the flood test down under the race detector.
const raceEnabled = true
