package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Flags may follow the arguments, as users type them; -- ends the flags,
// so a path that starts with a dash is still a path.
func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	content := filepath.Join(dir, "-data")
	if err := os.WriteFile(content, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.torrent")
	if code, _, errOut := runCmd("create", "--", content, "-o", out); code != exitUsage {
		t.Fatalf("-o after --: exit %d (%s), want %d: it is an argument there", code, errOut, exitUsage)
	}
	t.Chdir(dir)
	if code, stdout, errOut := runCmd("create", "-o", out, "--", "-data"); code != exitOK || !strings.HasPrefix(strings.Split(stdout, "\n")[1], "magnet:") {
		t.Fatalf("create -o x -- -data: exit %d, %q, %s", code, stdout, errOut)
	}
	if code, _, errOut := runCmd("create", content, "--output", out, "--piece-length", "16384"); code != exitOK {
		t.Fatalf("create PATH --output x: exit %d: %s", code, errOut)
	}
	// fetch reads its argument whatever follows: a bad link is bad input
	// (2), not a usage error about the argument count.
	if code, _, errOut := runCmd("fetch", "magnet:?dn=no-xt", "--dir", dir, "-j", "--state-dir="); code != exitBadInput {
		t.Fatalf("fetch MAGNET --dir D: exit %d: %s", code, errOut)
	}
}

// The single-dash long form of Go's flag package still works, and stays
// apart from clusters of short flags and from values.
func TestGoStyleLongFlags(t *testing.T) {
	fs := newFlagSet("t", &flagCapture{}, "t")
	fs.StringP("dir", "d", ".", "")
	fs.BoolP("json", "j", false, "")
	fs.String("listen", "", "")
	fs.String("tracker", "", "")
	for _, c := range []struct{ in, want []string }{
		{[]string{"-listen", "x", "arg"}, []string{"--listen", "x", "arg"}},
		{[]string{"-listen=x"}, []string{"--listen=x"}},
		{[]string{"-jd", "-listen"}, []string{"-jd", "-listen"}}, // -listen is -d's value
		{[]string{"--tracker", "-json"}, []string{"--tracker", "-json"}},
		{[]string{"-dfoo", "-json"}, []string{"-dfoo", "--json"}},
		{[]string{"--", "-listen"}, []string{"--", "-listen"}},
		{[]string{"-x", "-1"}, []string{"-x", "-1"}},
	} {
		if got := goStyleLong(fs, c.in); !slices.Equal(got, c.want) {
			t.Errorf("goStyleLong(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if code, _, errOut := runCmd("create", "-piece-length", "100", "-o", "x.torrent", "."); code != exitUsage || !strings.Contains(errOut, "--piece-length 100") {
		t.Fatalf("-piece-length 100: exit %d: %s", code, errOut)
	}
}
