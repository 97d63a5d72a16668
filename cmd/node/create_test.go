package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

// reorder puts flags first, each with its value, and leaves the
// positional arguments in order; a boolean flag takes no value.
func TestReorder(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("o", "", "")
	fs.Bool("v", false, "")
	for _, c := range []struct{ in, want []string }{
		{[]string{"dir", "-o", "x.torrent"}, []string{"-o", "x.torrent", "dir"}},
		{[]string{"dir", "--o=x.torrent"}, []string{"--o=x.torrent", "dir"}},
		{[]string{"dir", "-v", "other"}, []string{"-v", "dir", "other"}},
		{[]string{"-o", "x", "dir", "--", "-name"}, []string{"-o", "x", "dir", "-name"}},
		{[]string{"dir", "-o"}, []string{"-o", "dir"}},
	} {
		if got := reorder(fs, c.in); !slices.Equal(got, c.want) {
			t.Errorf("reorder(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSplitList(t *testing.T) {
	var m multiFlag
	m.Set("a, b,,c")
	m.Set(" d ")
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(m, want) {
		t.Errorf("multiFlag = %q, want %q", m, want)
	}
	l := listFlag{vals: []string{"default"}}
	l.Set("x,y")
	if want := []string{"x", "y"}; !slices.Equal(l.vals, want) {
		t.Errorf("listFlag = %q, want %q", l.vals, want)
	}
}
