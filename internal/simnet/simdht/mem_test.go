package simdht

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"node/internal/simnet"
)

func TestMemProfile(t *testing.T) {
	if os.Getenv("SIM_MEMPROF") == "" {
		t.Skip()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	w, err := Build(ctx, Options{Impl: Ours, Nodes: 3000, Seed: 1, Model: simnet.Internet(1), Silent: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	t.Logf("heap %d stack %d per node; goroutines %d", (m1.HeapInuse-m0.HeapInuse)/2100, (m1.StackInuse-m0.StackInuse)/2100, runtime.NumGoroutine())
	f, _ := os.Create(os.Getenv("SIM_MEMPROF"))
	pprof.WriteHeapProfile(f)
	f.Close()
}
