package benchkit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"node/internal/bench/benchfmt"
)

// Median is the median of xs, or none if xs is empty.
func Median(xs []float64, none float64) float64 {
	if len(xs) == 0 {
		return none
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// PrintSection prints sec as a table whose two columns of figures are
// headed ours and theirs (what the schema's Ours and Anacrolix hold), the
// target column targetWidth wide, then its notes. The ratio is shown
// where both figures are known: a negative one stands for none.
func PrintSection(w io.Writer, sec benchfmt.Section, ours, theirs string, targetWidth int) {
	width := 24
	for _, r := range sec.Rows {
		width = max(width, len([]rune(r.Metric))+len(r.Unit)+3)
	}
	fmt.Fprintf(w, "\n%s\n", sec.Name)
	fmt.Fprintf(w, "  %-*s %10s %10s %7s %*s %4s\n", width, "", ours, theirs, "ratio", targetWidth, "target", "met")
	for _, r := range sec.Rows {
		other, ratio := "-", "-"
		if r.Anacrolix != nil {
			other = strconv.FormatFloat(*r.Anacrolix, 'f', 2, 64)
			if *r.Anacrolix > 0 && r.Ours >= 0 {
				ratio = fmt.Sprintf("%.2fx", r.Ours / *r.Anacrolix)
			}
		}
		met := ""
		if r.Met != nil {
			met = "no"
			if *r.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "  %-*s %10.2f %10s %7s %*s %4s\n", width, r.Metric+" ("+r.Unit+")", r.Ours, other, ratio, targetWidth, r.Target, met)
	}
	for _, n := range sec.Notes {
		fmt.Fprintf(w, "  * %s\n", n)
	}
}

// WriteJSON writes v, indented, to path through a temporary file, so that
// a reader never sees half of it.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return werr
	}
	return os.Rename(tmp.Name(), path)
}
