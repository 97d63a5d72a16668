package testutil

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// WriteFiles writes files (slash-separated paths under root, and their
// sizes) of random bytes drawn from seed, so that a test's content is the
// same every run.
func WriteFiles(t testing.TB, root string, seed uint64, files map[string]int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 4))
	for p, n := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
