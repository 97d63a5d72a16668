package testutil

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// WriteFiles writes files (slash-separated paths under root, and their
// sizes) of random bytes drawn from seed, so that a test's content is the
// same every run. The bytes come from ChaCha8's Read, whose blocks are
// generated outside the race detector's reach: under -race on a loaded
// 2-core machine a fill a byte at a time took 10 s for 16 MiB, ChaCha8's
// Read 0.1 s.
func WriteFiles(t testing.TB, root string, seed uint64, files map[string]int) {
	t.Helper()
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	r := rand.NewChaCha8(key)
	for p, n := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		_, _ = r.Read(b)
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
