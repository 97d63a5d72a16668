package metadata

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Parsing allocates at most parseAllocFactor times its input plus
// parseAllocSlack in total, whatever the input holds; TotalAlloc bounds the
// growth of the heap from above. The factor is set by legitimate input: a
// path of one-byte components costs a 16-byte string header for every
// three bytes of encoding.
const (
	parseAllocFactor = 6
	parseAllocSlack  = 1 << 20
)

// filler is a bencoded list of n bytes (n >= 5 or even) of elem, a
// two-byte value: "de" costs two bytes to encode and far more to decode.
func filler(n int, elem string) []byte {
	b := make([]byte, 0, n)
	b = append(b, 'l')
	if n%2 != 0 {
		b = append(b, "i0e"...)
		n -= 3
	}
	b = append(b, bytes.Repeat([]byte(elem), (n-2)/2)...)
	return append(b, 'e')
}

// kv bencodes one dictionary entry whose value is raw.
func kv(key string, raw []byte) []byte {
	b := strconv.AppendInt(nil, int64(len(key)), 10)
	b = append(b, ':')
	b = append(b, key...)
	return append(b, raw...)
}

// padded is a bencoded dictionary of n bytes: entries, then padKey holding
// a filler of elem for the rest.
func padded(t testing.TB, n int, padKey, elem string, entries ...[]byte) []byte {
	t.Helper()
	b := []byte("d")
	for _, e := range entries {
		b = append(b, e...)
	}
	b = append(b, kv(padKey, nil)...)
	pad := n - len(b) - 1
	if pad < 5 {
		t.Fatalf("%d bytes do not fit in %d", len(b), n)
	}
	b = append(b, filler(pad, elem)...)
	return append(b, 'e')
}

// allocs is the bytes f allocates.
func allocs(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Keys we do not read, and keys of the wrong kind, cost no more than their
// encoding: before, an info dictionary of 16 MiB holding empty dictionaries
// under an unknown key grew the heap by some 600 MiB, a .torrent of 64 MiB
// by 2.6 GiB.
func TestParseDoesNotAmplify(t *testing.T) {
	small := enc(t, singleInfo("f", 16<<10, 40000))
	smallEntries := small[1 : len(small)-1]
	info16 := padded(t, MaxMetadataSize, "x", "de", smallEntries)
	hash := string(make([]byte, HashLen))
	fileEntry := padded(t, MaxMetadataSize-200, "x", "de", kv("length", []byte("i1e")), kv("path", []byte("l1:ae")))
	manyFiles := []byte("l")
	for i := range MaxFiles {
		manyFiles = append(manyFiles, "d6:lengthi0e4:pathl"...)
		name := strconv.FormatInt(int64(i), 36)
		manyFiles = strconv.AppendInt(manyFiles, int64(len(name)), 10)
		manyFiles = append(manyFiles, ':')
		manyFiles = append(manyFiles, name...)
		manyFiles = append(manyFiles, "ee"...)
	}
	manyFiles = append(manyFiles, 'e')
	// Paths of one-byte components are the most []string per byte. Each
	// path's first component tells it apart: were it the last, sorting
	// the paths for the layout check would compare thousands of shared
	// components a time, 13 s of this test under -race, allocating nothing.
	longPaths := []byte("l")
	deep := strings.Repeat("1:a", MaxPathLen/2-4)
	for i := 0; len(longPaths) < MaxMetadataSize-2*MaxPathLen; i++ {
		name := strconv.FormatInt(int64(i), 36)
		longPaths = append(longPaths, "d6:lengthi0e4:pathl"...)
		longPaths = strconv.AppendInt(longPaths, int64(len(name)), 10)
		longPaths = append(longPaths, ':')
		longPaths = append(longPaths, name...)
		longPaths = append(longPaths, deep+"ee"...)
	}
	longPaths = append(longPaths, 'e')
	torrent := func(entries ...[]byte) []byte {
		return append(append([]byte("d"), bytes.Join(entries, nil)...), 'e')
	}
	parseInfo := func(b []byte) error { _, err := ParseInfo(b); return err }
	parseMetaInfo := func(b []byte) error { _, err := ParseMetaInfo(b); return err }
	for _, tt := range []struct {
		name  string
		b     []byte
		parse func([]byte) error
		ok    bool
	}{
		{"info, unknown key", info16, parseInfo, true},
		{"torrent, unknown key", padded(t, maxMetaInfoSize, "x", "de", kv("info", small)), parseMetaInfo, true},
		{"torrent, unknown key in info", torrent(kv("info", info16)), parseMetaInfo, true},
		{"unknown key in a file", torrent(kv("files", []byte("l"+string(fileEntry)+"e")),
			kv("name", []byte("1:d")), kv("piece length", []byte("i16e")), kv("pieces", []byte("20:"+hash))), parseInfo, true},
		{"attr of strings", padded(t, MaxMetadataSize, "attr", "0:", smallEntries), parseInfo, false},
		{"name of strings", padded(t, MaxMetadataSize, "name", "0:", kv("length", []byte("i1e")), kv("piece length", []byte("i16e")), kv("pieces", []byte("20:"+hash))), parseInfo, false},
		{"nodes", torrent(kv("info", small), kv("nodes", filler(maxOptionalSize, "de"))), parseMetaInfo, true},
		{"node entry", torrent(kv("info", small), kv("nodes", append(append([]byte("l"), filler(maxOptionalSize-2, "de")...), 'e'))), parseMetaInfo, true},
		{"announce-list", torrent(kv("announce-list", append(append([]byte("l"), filler(maxOptionalSize-2, "0:")...), 'e')), kv("info", small)), parseMetaInfo, true},
		{"many files", torrent(kv("files", manyFiles), kv("name", []byte("1:d")), kv("piece length", []byte("i16e")), kv("pieces", []byte("0:"))), parseInfo, true},
		{"long paths", torrent(kv("files", longPaths), kv("name", []byte("1:d")), kv("piece length", []byte("i16e")), kv("pieces", []byte("0:"))), parseInfo, true},
		{"ut_metadata", padded(t, 1<<20, "x", "de", kv("msg_type", []byte("i0e")), kv("piece", []byte("i0e"))), func(b []byte) error {
			_, _, err := ParseMetadataMsg(b)
			return err
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			n := allocs(func() { err = tt.parse(tt.b) })
			if (err == nil) != tt.ok {
				t.Fatalf("parse: %v", err)
			}
			limit := uint64(parseAllocFactor*len(tt.b) + parseAllocSlack)
			t.Logf("%d bytes, %d allocated: %.2f times", len(tt.b), n, float64(n)/float64(len(tt.b)))
			if n > limit {
				t.Errorf("%d bytes allocated parsing %d, more than %d", n, len(tt.b), limit)
			}
		})
	}
}
