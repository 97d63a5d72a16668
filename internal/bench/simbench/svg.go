package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"node/internal/simnet/simdht"
)

// drawSVG draws, per run, the distribution of the time to the first peer
// as a cumulative curve: x the time (log scale, 10 ms to 10 s), y the
// share of lookups that had a peer by then. Lookups that found none keep
// their curve below 100%.
func drawSVG(runs []*summary, rtt time.Duration) string {
	const (
		w, h           = 780, 440
		left, right    = 70, 240
		top, bottom    = 40, 60
		minMs, maxMs   = 10.0, 10000.0
		plotW, plotH   = w - left - right, h - top - bottom
		ourColours     = "#1f77b4,#2ca02c,#9467bd,#17becf"
		theirColours   = "#d62728,#ff7f0e,#8c564b,#e377c2"
		decadesPerAxis = 3
	)
	x := func(ms float64) float64 {
		ms = math.Min(math.Max(ms, minMs), maxMs)
		return left + plotW*math.Log10(ms/minMs)/decadesPerAxis
	}
	y := func(share float64) float64 { return top + plotH*(1-share) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14">Time to the first peer, simulated DHT (median RTT %v)</text>`+"\n", left, rtt.Round(time.Millisecond))
	for _, ms := range []float64{10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(ms), top, x(ms), top+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(ms), top+plotH+16, label(ms))
	}
	for _, s := range []float64{0, 0.25, 0.5, 0.75, 0.9, 0.99, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(s), left+plotW, y(s))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g%%</text>`+"\n", left-6, y(s)+4, 100*s)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time to the first peer (ms, log scale)</text>`+"\n", left+plotW/2, h-16)
	fmt.Fprintf(&b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">lookups with a peer</text>`+"\n", top+plotH/2, top+plotH/2)
	// The target: 3 median round trips.
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999" stroke-dasharray="4 3"/>`+"\n", x(3*ms(rtt)), top, x(3*ms(rtt)), top+plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#666" text-anchor="middle">3 RTT</text>`+"\n", x(3*ms(rtt)), top-4)
	ours, theirs := strings.Split(ourColours, ","), strings.Split(theirColours, ",")
	for i, s := range runs {
		var colour string
		if s.Impl == simdht.Ours {
			colour, ours = ours[0], append(ours[1:], ours[0])
		} else {
			colour, theirs = theirs[0], append(theirs[1:], theirs[0])
		}
		dash := ""
		if s.Impl != simdht.Ours {
			dash = ` stroke-dasharray="6 3"`
		}
		if s.Liars > 0 {
			dash = ` stroke-dasharray="2 2"`
		}
		xs := slices.Clone(s.FirstMs)
		slices.Sort(xs)
		var pts []string
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(minMs), y(0)))
		for k, v := range xs {
			if math.IsInf(v, 1) {
				break
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(v), y(float64(k)/float64(len(xs))), x(v), y(float64(k+1)/float64(len(xs)))))
		}
		last := 0.0
		if n := len(xs); n > 0 {
			found := n - len(slices.DeleteFunc(slices.Clone(xs), func(v float64) bool { return !math.IsInf(v, 1) }))
			last = float64(found) / float64(n)
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(maxMs), y(last)))
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colour, dash, strings.Join(pts, " "))
		ly := top + 14 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", left+plotW+12, ly, left+plotW+36, ly, colour, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s, %s nodes</text>`+"\n", left+plotW+42, ly+4, s.label(), thousands(s.Nodes))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func label(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%gs", ms/1000)
	}
	return fmt.Sprintf("%g", ms)
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
