package main

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"node/internal/simnet/simdht"
)

// A lookup that never got there counts as slower than any: a percentile
// it reaches is none.
func TestPercentileCountsMisses(t *testing.T) {
	inf := math.Inf(1)
	xs := []float64{300, 100, inf, 200}
	if got := pct(xs, 50); got != 200 {
		t.Fatalf("median %v, want 200", got)
	}
	if got := pct(xs, 99); !math.IsInf(got, 1) {
		t.Fatalf("p99 %v, want none", got)
	}
	if fmtMs(pct(xs, 99)) != "none" {
		t.Fatal("none not printed as none")
	}
}

// The drawing is well-formed XML with a curve and a legend entry per run,
// whatever the runs found.
func TestSVGWellFormed(t *testing.T) {
	runs := []*summary{
		{Impl: simdht.Ours, Nodes: 1000, FirstMs: []float64{5, 150, 900, 20000, math.Inf(1)}},
		{Impl: simdht.Anacrolix, Nodes: 10000, FirstMs: []float64{math.Inf(1)}},
		{Impl: simdht.Ours, Nodes: 1000, Liars: 0.1},
	}
	svg := drawSVG(runs, 100*time.Millisecond)
	d := xml.NewDecoder(strings.NewReader(svg))
	lines := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != len(runs) {
		t.Fatalf("%d curves for %d runs", lines, len(runs))
	}
	for _, want := range []string{"ours, 1,000 nodes", "anacrolix, 10,000 nodes", "ours+liars, 1,000 nodes"} {
		if !strings.Contains(svg, want) {
			t.Fatalf("legend lacks %q", want)
		}
	}
}
