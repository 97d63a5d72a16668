package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
)

// gcPercent replaces Go's default GOGC of 100 unless GOGC is set. node's
// steady state allocates next to nothing (pooled blocks and piece
// buffers, allocation-free KRPC serving), so collections stay rare even
// at 25, while the peak heap, which at 100 may double what is live (the
// pieces being downloaded), stays close to it: a 1 GiB download from
// four seeders peaks at about 35 MiB RSS rather than 45.
const gcPercent = 25

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// startProfile writes a CPU profile of the whole run to the file named by
// NODE_CPUPROFILE, for measuring node in the process it really runs in
// (benchmarks start node as its own process). It returns the function
// that finishes the profile.
func startProfile(stderr io.Writer) func() {
	path := os.Getenv("NODE_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(stderr, "node: NODE_CPUPROFILE:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(stderr, "node: NODE_CPUPROFILE:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
