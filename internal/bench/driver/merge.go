package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"node/internal/bench/benchfmt"
)

// row is a benchfmt.Row with the ratio ours/anacrolix filled in.
type row struct {
	benchfmt.Row
	Ratio *float64 `json:"ratio,omitempty"`
}

type section struct {
	Name  string   `json:"name"`
	Step  string   `json:"step"`
	Rows  []row    `json:"rows"`
	Notes []string `json:"notes,omitempty"`
}

type machine struct {
	CPUModel  string  `json:"cpu_model"`
	MemoryGiB float64 `json:"memory_gib"`
}

// merged is bench's output: the run's context, every step's outcome and
// every section in step order.
type merged struct {
	Date         string       `json:"date"`
	GoVersion    string       `json:"go"`
	OS           string       `json:"os"`
	Arch         string       `json:"arch"`
	CPUs         int          `json:"cpus"`
	Machine      machine      `json:"machine"`
	TotalSeconds float64      `json:"total_s"`
	Steps        []stepResult `json:"steps"`
	Sections     []section    `json:"sections"`
}

// ratio is ours/anacrolix where it means something: a counterpart above
// zero and a figure of ours that is not negative (producers use -1 for
// "never happened").
func ratio(r benchfmt.Row) *float64 {
	if r.Anacrolix == nil || *r.Anacrolix <= 0 || r.Ours < 0 || math.IsNaN(r.Ours) || math.IsInf(r.Ours, 0) {
		return nil
	}
	q := r.Ours / *r.Anacrolix
	return &q
}

// merge puts the steps' sections together in step order; sections of the
// same name (one from each package of a step, say) become one.
func merge(results []stepResult, mach machine, began time.Time) merged {
	m := merged{
		Date: began.UTC().Format(time.RFC3339), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Machine: mach,
		Steps: results,
	}
	at := map[string]int{}
	for _, res := range results {
		for _, fs := range res.Sections {
			i, ok := at[fs.Name]
			if !ok {
				i = len(m.Sections)
				at[fs.Name] = i
				m.Sections = append(m.Sections, section{Name: fs.Name, Step: res.Name, Rows: []row{}})
			}
			s := &m.Sections[i]
			for _, fr := range fs.Rows {
				s.Rows = append(s.Rows, row{Row: fr, Ratio: ratio(fr)})
			}
			s.Notes = append(s.Notes, fs.Notes...)
		}
	}
	return m
}

func (m merged) failedSteps() []string {
	var out []string
	for _, s := range m.Steps {
		if !s.OK {
			out = append(out, s.Name)
		}
	}
	return out
}

func (m merged) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// num formats a figure with about three significant digits, integers as
// integers.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func (r row) label() string {
	if r.Unit == "" {
		return r.Metric
	}
	return r.Metric + " (" + r.Unit + ")"
}

// render prints the one table: a heading per section (and per failed
// step, with the end of its output), a line per metric, the notes, then
// each step's duration.
func render(w io.Writer, m merged) {
	fmt.Fprintf(w, "make bench, %s: %s, %s/%s, %d CPUs (%s), %.1f GiB RAM\n",
		m.Date, m.GoVersion, m.OS, m.Arch, m.CPUs, m.Machine.CPUModel, m.Machine.MemoryGiB)
	width := len("metric")
	for _, s := range m.Sections {
		for _, r := range s.Rows {
			width = max(width, len([]rune(r.label())))
		}
	}
	width = min(width, 60)
	line := func(cells ...string) {
		fmt.Fprintf(w, "%-*s %10s %10s %8s %10s %4s\n", width, cells[0], cells[1], cells[2], cells[3], cells[4], cells[5])
	}
	fmt.Fprintln(w)
	line("metric", "ours", "anacrolix", "ratio", "target", "met")
	rule := strings.Repeat("-", width+48)
	for _, st := range m.Steps {
		for _, s := range m.Sections {
			if s.Step != st.Name {
				continue
			}
			fmt.Fprintf(w, "%s\n== %s\n", rule, s.Name)
			for _, r := range s.Rows {
				theirs, q, met := "-", "-", ""
				if r.Anacrolix != nil {
					theirs = num(*r.Anacrolix)
				}
				if r.Ratio != nil {
					q = fmt.Sprintf("%.2fx", *r.Ratio)
				}
				if r.Met != nil {
					met = "no"
					if *r.Met {
						met = "yes"
					}
				}
				line(r.label(), num(r.Ours), theirs, q, r.Target, met)
			}
			for _, n := range s.Notes {
				fmt.Fprintf(w, "   * %s\n", n)
			}
		}
		for _, warn := range st.Warnings {
			fmt.Fprintf(w, "   ! step %s: %s\n", st.Name, warn)
		}
		if !st.OK {
			fmt.Fprintf(w, "%s\n== step %s FAILED after %.1f s: %s\n", rule, st.Name, st.Seconds, st.Error)
			for _, c := range st.Commands {
				fmt.Fprintf(w, "   $ %s\n", c)
			}
			for _, l := range st.Tail {
				fmt.Fprintf(w, "   | %s\n", l)
			}
		}
	}
	fmt.Fprintln(w, rule)
	var parts []string
	for _, st := range m.Steps {
		switch {
		case st.Skipped:
			parts = append(parts, st.Name+" skipped")
		case st.OK:
			parts = append(parts, fmt.Sprintf("%s %.0f s", st.Name, st.Seconds))
		default:
			parts = append(parts, fmt.Sprintf("%s FAILED (%.0f s)", st.Name, st.Seconds))
		}
	}
	fmt.Fprintf(w, "steps: %s; total %.0f s. ratio = ours / anacrolix.\n", strings.Join(parts, ", "), m.TotalSeconds)
}
