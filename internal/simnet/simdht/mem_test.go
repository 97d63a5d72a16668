package simdht

import (
	"context"
	"runtime"
	"testing"
	"time"

	"node/internal/simnet"
)

// maxNodeMemory bounds the heap and goroutine stacks of one of our nodes
// started warm in a simulation (its table, view, transport, caches).
const maxNodeMemory = 96 << 10

// A warm node of ours, idle, holds less than maxNodeMemory.
func TestMemoryPerNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	w, err := Build(ctx, Options{Impl: Ours, Nodes: 2000, Seed: 1, Model: simnet.Internet(1), Silent: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	live := len(w.Responsive())
	per := (int64(m1.HeapInuse+m1.StackInuse) - int64(m0.HeapInuse+m0.StackInuse)) / int64(live)
	t.Logf("%d bytes per node over %d nodes", per, live)
	if per > maxNodeMemory {
		t.Fatalf("%d bytes per node, over %d", per, maxNodeMemory)
	}
}
