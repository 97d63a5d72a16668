//go:build !race

package krpc

const raceEnabled = false
