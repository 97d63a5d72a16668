// Package benchfmt is the file format make bench's steps write and the
// driver (internal/bench/driver) merges: sections of rows, ours against
// anacrolix. The benchmark programs under internal/bench and the go test
// benchmarks in dht all write it through this package.
package benchfmt

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
)

// File is one step's output.
type File struct {
	Sections []Section `json:"sections"`
}

// Section is one table of make bench's output.
type Section struct {
	Name  string   `json:"name"`
	Rows  []Row    `json:"rows"`
	Notes []string `json:"notes,omitempty"`
}

// Row is one metric. The ratio ours/anacrolix is the merger's to compute.
type Row struct {
	Metric    string   `json:"metric"`
	Unit      string   `json:"unit"`
	Ours      float64  `json:"ours"`
	Anacrolix *float64 `json:"anacrolix"` // nil: no counterpart
	Better    string   `json:"better"`    // "lower" or "higher"
	Target    string   `json:"target,omitempty"`
	Met       *bool    `json:"met,omitempty"` // only with a target
}

// Read reads the file at path; a missing file is an empty one.
func Read(path string) (File, error) {
	var f File
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Write writes f, indented, to path.
func Write(path string, f File) error {
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// Merge writes secs into the file at path, replacing sections of the same
// name and keeping the others: a go test benchmark run more than once, or
// several benchmarks of one package, add to the same file.
func Merge(path string, secs []Section) error {
	f, err := Read(path)
	if err != nil {
		return err
	}
	for _, sec := range secs {
		i := slices.IndexFunc(f.Sections, func(o Section) bool { return o.Name == sec.Name })
		if i < 0 {
			f.Sections = append(f.Sections, sec)
		} else {
			f.Sections[i] = sec
		}
	}
	return Write(path, f)
}
