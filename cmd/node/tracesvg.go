package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"node/dht"
	"node/storage/atomicfile"
)

// traceSummary is what the title says of the lookup: its own figures, not
// the trace's, which may have dropped events past dht.MaxTraceEvents.
type traceSummary struct {
	Method    string
	Queries   int
	Responses int
	Peers     int
	Duration  time.Duration
	Err       error
}

// The picture's frame, in SVG user units (pixels at 100%).
const (
	svgW, svgH                   = 960, 560
	plotL, plotR, plotT, plotB   = 100, 930, 90, 500
	markR                        = 4.0
	svgFont                      = "font-family:sans-serif;font-size:12px"
	traceTicks                   = 8
	traceDistTicksMax            = 10
	traceUnknownLabel            = "ID unknown"
	traceMinSpanMS, traceMinDist = 1.0, 1.0
)

// writeTraceSVG draws a traced lookup: x is the time since it started, y
// the log2 distance to the target (nearer at the top); each query is a
// line from when it was sent to when it ended, with a mark at the end
// whose class says how it ended (answered-peers, answered, timeout, error,
// disowned, abandoned); a thin line joins each node to the one that named it.
func writeTraceSVG(w io.Writer, tr *dht.Trace, sum traceSummary) error {
	evs, dropped := tr.Events()
	start := tr.Start()
	ms := func(t time.Time) float64 { return float64(t.Sub(start)) / float64(time.Millisecond) }

	spanMS := max(traceMinSpanMS, float64(sum.Duration)/float64(time.Millisecond))
	dmin, dmax := math.Inf(1), math.Inf(-1)
	for _, e := range evs {
		spanMS = max(spanMS, ms(e.Done))
		if !math.IsNaN(e.Dist) {
			dmin, dmax = min(dmin, e.Dist), max(dmax, e.Dist)
		}
	}
	if math.IsInf(dmin, 1) {
		dmin, dmax = 0, 160
	}
	dmin, dmax = math.Floor(dmin), math.Ceil(dmax)
	if dmax-dmin < traceMinDist {
		dmax = dmin + traceMinDist
	}
	// IDs unknown (a bootstrap address that never answered) get a row of
	// their own below the farthest.
	unknownY := float64(plotB) - 8
	plotBottom := float64(plotB) - 28
	xOf := func(msv float64) float64 { return plotL + msv/spanMS*(plotR-plotL) }
	yOf := func(d float64) float64 {
		if math.IsNaN(d) {
			return unknownY
		}
		return plotT + (d-dmin)/(dmax-dmin)*(plotBottom-plotT)
	}

	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", svgW, svgH, svgW, svgH)
	p(`<style>
text{%s;fill:#222}
.title{font-size:15px;font-weight:bold}
.axis{stroke:#444;stroke-width:1}
.grid{stroke:#ddd;stroke-width:1}
.edge{stroke:#9ab;stroke-width:0.6;opacity:0.6}
.flight{stroke:#888;stroke-width:1.2}
.slowpart{stroke:#c80;stroke-width:1.2;stroke-dasharray:3 2}
.answered-peers{fill:#1a9641;stroke:#0b4d20}
.answered{fill:#2b83ba;stroke:#124060}
.timeout{fill:#fff;stroke:#d7191c;stroke-width:1.5}
.error{fill:#d7191c;stroke:#7a0c0d}
.abandoned{fill:#fff;stroke:#999;stroke-width:1}
.disowned{fill:#fdae61;stroke:#a6611a}
</style>`+"\n", svgFont)
	p(`<rect width="100%%" height="100%%" fill="#fff"/>` + "\n")

	title := fmt.Sprintf("%s %s", orDash(sum.Method), tr.Target())
	sub := fmt.Sprintf("%d queries, %d answers, %d peers found, %v", sum.Queries, sum.Responses, sum.Peers, sum.Duration.Round(time.Millisecond))
	if sum.Err != nil {
		sub += " — " + sum.Err.Error()
	}
	if dropped > 0 {
		sub += fmt.Sprintf(" — %d queries not drawn (trace full at %d)", dropped, dht.MaxTraceEvents)
	}
	p(`<text class="title" x="%d" y="24">%s</text>`+"\n", plotL, xmlText(title))
	p(`<text x="%d" y="44">%s</text>`+"\n", plotL, xmlText(sub))

	// Legend.
	legend := []struct{ class, label string }{
		{"answered-peers", "answered with peers"}, {"answered", "answered, no peers"},
		{"timeout", "timed out"}, {"error", "error"}, {"abandoned", "lookup ended first"},
		{"disowned", "answered under another ID"},
	}
	lx := float64(plotL)
	for _, l := range legend {
		p(`<circle cx="%.1f" cy="66" r="%.1f" class="legend %s"/>`, lx+markR, markR, l.class)
		p(`<text x="%.1f" y="70">%s</text>`+"\n", lx+3*markR, l.label)
		lx += 30 + 6.5*float64(len(l.label))
	}

	// Axes and grid.
	for _, t := range niceTicks(0, spanMS, traceTicks, 0) {
		x := xOf(t)
		p(`<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%.1f"/>`, x, plotT, x, plotBottom)
		p(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, plotB+18, trimFloat(t))
	}
	for _, d := range niceTicks(dmin, dmax, traceDistTicksMax, 1) {
		y := yOf(d)
		p(`<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, plotL, y, plotR, y)
		p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotL-6, y+4, trimFloat(d))
	}
	p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotL-6, unknownY+4, traceUnknownLabel)
	p(`<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`+"\n", plotL, plotT, plotL, plotB+4)
	p(`<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`+"\n", plotL, plotB+4, plotR, plotB+4)
	p(`<text x="%d" y="%d" text-anchor="middle">time since the lookup started (ms)</text>`+"\n", (plotL+plotR)/2, plotB+40)
	p(`<text transform="translate(20 %d) rotate(-90)" text-anchor="middle">log2 XOR distance to the target (nearer at the top)</text>`+"\n", (plotT+plotB)/2)

	// Who named whom: from the parent's answer to the child's query.
	answeredAt := map[netip.AddrPort]dht.TraceEvent{}
	for _, e := range evs {
		if e.Outcome == dht.TraceAnswered {
			if _, ok := answeredAt[e.Addr]; !ok {
				answeredAt[e.Addr] = e
			}
		}
	}
	p("<g>\n")
	for _, e := range evs {
		par, ok := answeredAt[e.From]
		if !e.From.IsValid() || !ok {
			continue
		}
		p(`<line class="edge" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", xOf(ms(par.Done)), yOf(par.Dist), xOf(ms(e.Sent)), yOf(e.Dist))
	}
	p("</g>\n<g>\n")
	for _, e := range evs {
		y := yOf(e.Dist)
		x0, x1 := xOf(ms(e.Sent)), xOf(ms(e.Done))
		if !e.Slow.IsZero() && e.Slow.Before(e.Done) {
			xs := xOf(ms(e.Slow))
			p(`<line class="flight" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x0, y, xs, y)
			p(`<line class="slowpart" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", xs, y, x1, y)
			continue
		}
		p(`<line class="flight" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x0, y, x1, y)
	}
	p("</g>\n<g>\n")
	for _, e := range evs {
		class := markClass(e)
		x, y := xOf(ms(e.Done)), yOf(e.Dist)
		tip := markTip(e, ms)
		if class == "timeout" || class == "error" {
			// A cross where an answer would be a dot, so the picture
			// reads without colour too.
			p(`<path class="mark %s" d="M%.1f %.1fl%.1f %.1fm0 %.1fl%.1f %.1f"><title>%s</title></path>`+"\n",
				class, x-markR, y-markR, 2*markR, 2*markR, -2*markR, -2*markR, 2*markR, xmlText(tip))
			continue
		}
		p(`<circle class="mark %s" cx="%.1f" cy="%.1f" r="%.1f"><title>%s</title></circle>`+"\n", class, x, y, markR, xmlText(tip))
	}
	p("</g>\n</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func markClass(e dht.TraceEvent) string {
	switch e.Outcome {
	case dht.TraceAnswered:
		if e.Peers > 0 {
			return "answered-peers"
		}
		return "answered"
	case dht.TraceTimedOut:
		return "timeout"
	case dht.TraceError:
		return "error"
	case dht.TraceDisowned:
		return "disowned"
	}
	return "abandoned"
}

func markTip(e dht.TraceEvent, ms func(time.Time) float64) string {
	dist := traceUnknownLabel
	if !math.IsNaN(e.Dist) {
		dist = fmt.Sprintf("distance 2^%.2f", e.Dist)
	}
	s := fmt.Sprintf("%v %s, %s, sent at %.1f ms, %s after %.1f ms", e.Addr, e.Method, dist, ms(e.Sent), e.Outcome, ms(e.Done)-ms(e.Sent))
	if e.Outcome == dht.TraceAnswered {
		s += fmt.Sprintf(", %d peers, %d nodes", e.Peers, e.Nodes)
	}
	if !e.Slow.IsZero() {
		s += fmt.Sprintf(", slow at %.1f ms", ms(e.Slow))
	}
	if e.From.IsValid() {
		s += fmt.Sprintf(", named by %v", e.From)
	}
	return printable(s)
}

func orDash(s string) string {
	if s == "" {
		return "lookup"
	}
	return s
}

// xmlText escapes s for an SVG text node or attribute. Nothing drawn
// comes from the network as text (addresses are parsed values), but an
// error message might quote one day what a node sent.
func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceTicks returns round values from lo to hi, at most about n of them,
// at least minStep apart.
func niceTicks(lo, hi float64, n int, minStep float64) []float64 {
	if hi <= lo || n < 1 {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	step = max(step, minStep)
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", math.Round(v*100)/100)
}

// checkTracePath refuses, before the lookup runs, a path that is a
// directory or in a directory that does not exist.
func checkTracePath(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("--trace %s: is a directory", path)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil {
		return fmt.Errorf("--trace: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("--trace %s: %s is not a directory", path, filepath.Dir(path))
	}
	return nil
}

// writeTraceFile replaces path with the picture whole, so a reader never
// sees half a picture and a failed write leaves what was there.
func writeTraceFile(path string, tr *dht.Trace, sum traceSummary) error {
	if err := checkTracePath(path); err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return writeTraceSVG(w, tr, sum) })
}
