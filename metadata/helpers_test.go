package metadata

import (
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

// enc bencodes v (maps come out with sorted keys).
func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bencode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pieceHashes is n piece hashes; ParseInfo only counts them.
func pieceHashes(n int) string { return string(make([]byte, n*HashLen)) }

func file(length int64, path ...string) map[string]any {
	return map[string]any{"length": length, "path": path}
}

// multiInfo is a multi-file info dict with the right number of hashes.
func multiInfo(name string, pl int64, files ...map[string]any) map[string]any {
	var total int64
	for _, f := range files {
		n, _ := f["length"].(int64)
		total += n
	}
	return map[string]any{
		"name":         name,
		"piece length": pl,
		"pieces":       pieceHashes(int((total + pl - 1) / pl)),
		"files":        files,
	}
}

func singleInfo(name string, pl, length int64) map[string]any {
	return map[string]any{
		"name":         name,
		"piece length": pl,
		"pieces":       pieceHashes(int((length + pl - 1) / pl)),
		"length":       length,
	}
}
