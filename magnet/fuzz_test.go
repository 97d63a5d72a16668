package magnet

import (
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics and that every Link it returns
// formats to a URI that parses back to the same Link.
func FuzzParse(f *testing.F) {
	for _, s := range validLinks {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		l, err := Parse(uri)
		if err != nil {
			return
		}
		s := l.String()
		again, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String %q fails: %v", uri, s, err)
		}
		if !reflect.DeepEqual(again, l) {
			t.Fatalf("round trip of %q via %q\n got %+v\nwant %+v", uri, s, again, l)
		}
	})
}
