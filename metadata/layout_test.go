package metadata

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkCheckLayoutSharedPrefix: thousands of paths that share a
// prefix of thousands of components, whose comparisons walk the shared
// components one by one (0.4 s here). Sorting the paths joined with NUL
// took a quarter of that but allocated a key per path, which broke the
// parser's allocation bound (TestParseDoesNotAmplify): only the author of
// a torrent, whose info-hash the metadata must match, can send this.
func BenchmarkCheckLayoutSharedPrefix(b *testing.B) {
	prefix := make([]string, 2040)
	for i := range prefix {
		prefix[i] = "a"
	}
	files := make([]File, 2700)
	for i := range files {
		files[i].Path = append(append([]string(nil), prefix...), strconv.Itoa(i))
	}
	b.ResetTimer()
	for range b.N {
		if err := checkLayout(files); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckLayout(t *testing.T) {
	p := func(c ...string) File { return File{Path: c} }
	for _, c := range []struct {
		files []File
		want  string // "" for no error
	}{
		{[]File{p("a", "b"), p("ab"), p("a", "c")}, ""},
		{[]File{p("a", "b"), p("a")}, "directory"},
		{[]File{p("a"), p("a!"), p("a", "b")}, "directory"}, // "a!" sorts between "a" and "a/b" by component, not by key
		{[]File{p("x", "y"), p("x", "y")}, "duplicate"},
		{[]File{p("a", "b", "c"), p("a", "b")}, "directory"},
		{[]File{{Path: []string{"a"}, Padding: true}, p("a", "b")}, ""},
		{[]File{p("a b"), p("a", "b")}, ""},
	} {
		err := checkLayout(c.files)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: %v, want %q", c.files, err, c.want)
		}
	}
}
