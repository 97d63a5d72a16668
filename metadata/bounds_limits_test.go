package metadata

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A file path of MaxPathLen bytes, the torrent's name and separators
// included, is accepted; one byte more is refused.
func TestMaxPathLenBound(t *testing.T) {
	for _, n := range []int{MaxPathLen, MaxPathLen + 1} {
		// "d/" + a + "/" + b = n bytes.
		a := strings.Repeat("a", 2000)
		b := strings.Repeat("b", n-len("d/")-len(a)-len("/"))
		_, err := ParseInfo(enc(t, multiInfo("d", 16, file(1, a, b))))
		if n <= MaxPathLen && err != nil {
			t.Errorf("path of %d bytes: %v", n, err)
		}
		if n > MaxPathLen && (err == nil || !strings.Contains(err.Error(), "longer")) {
			t.Errorf("path of %d bytes: %v, bound is %d", n, err, MaxPathLen)
		}
	}
}

// Bencode nested maxNesting deep is walked; one level more is refused.
func TestMaxNestingBound(t *testing.T) {
	nested := func(n int) []byte { return []byte(strings.Repeat("l", n) + strings.Repeat("e", n)) }
	if _, err := skipValue(nested(maxNesting), 0); err != nil {
		t.Errorf("depth %d: %v", maxNesting, err)
	}
	if _, err := skipValue(nested(maxNesting+1), 0); !errors.Is(err, errTooDeep) {
		t.Errorf("depth %d: %v, bound is %d", maxNesting+1, err, maxNesting)
	}
}

// An optional .torrent key encoded in maxOptionalSize bytes is kept; one
// byte more and it is dropped, the torrent still read.
func TestMaxOptionalSizeBound(t *testing.T) {
	raw := enc(t, singleInfo("x", 16<<10, 1))
	for _, n := range []int{maxOptionalSize, maxOptionalSize + 1} {
		// The comment's encoding, "<len>:<text>", is n bytes.
		l := n - 1
		for len(fmt.Sprint(l))+1+l > n {
			l--
		}
		if len(fmt.Sprint(l))+1+l != n {
			t.Fatalf("no comment encodes in %d bytes", n)
		}
		comment := strings.Repeat("c", l)
		m, err := ParseMetaInfo([]byte("d7:comment" + fmt.Sprintf("%d:%s", l, comment) + "4:info" + string(raw) + "e"))
		if err != nil {
			t.Fatal(err)
		}
		if kept := m.Comment == comment; kept != (n <= maxOptionalSize) {
			t.Errorf("comment encoded in %d bytes: kept %v, bound is %d", n, kept, maxOptionalSize)
		}
	}
}

// Of a long "nodes" list only the first maxNodes are kept.
func TestMaxNodesBound(t *testing.T) {
	raw := enc(t, singleInfo("x", 16<<10, 1))
	var nodes []any
	for i := range maxNodes + 10 {
		nodes = append(nodes, []any{fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), int64(6881)})
	}
	m, err := ParseMetaInfo(enc(t, map[string]any{"info": rawValue(raw), "nodes": nodes}))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != maxNodes || m.Nodes[maxNodes-1] != fmt.Sprintf("10.0.%d.%d:6881", (maxNodes-1)/250, (maxNodes-1)%250+1) {
		t.Errorf("%d nodes kept, want the first maxNodes = %d", len(m.Nodes), maxNodes)
	}
}

// A string whose length runs past the end of the input is refused by the
// walker wherever it stands (a key, a value, deep in a list), as krpc's
// head scan refuses it in a datagram; the same input with the right
// length is walked.
func TestSkipValueRefusesOverlongStrings(t *testing.T) {
	for _, tmpl := range []string{"%s", "d1:x%se", "lll%seee", "d%si1ee"} {
		at := strings.Index(tmpl, "%s")
		rest := len("aa") + len(tmpl) - at - len("%s") // bytes after the ':'
		for _, c := range []struct {
			s  string
			ok bool
		}{{"2:aa", true}, {fmt.Sprintf("%d:aa", rest+1), false}, {"99999999999999999999:aa", false}} {
			b := []byte(fmt.Sprintf(tmpl, c.s))
			n, err := skipValue(b, 0)
			if c.ok && (err != nil || n != len(b)) {
				t.Errorf("%q: %d, %v; want %d, nil", b, n, err, len(b))
			}
			if !c.ok && (err == nil || !strings.Contains(err.Error(), "longer than input")) {
				t.Errorf("%q: %v, want a string longer than input", b, err)
			}
		}
	}
}
