package dht

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
)

// The file format of make bench's steps, which the benchmarks of this
// package write when NODE_BENCH_JSON names a file. It is
// cmd/internal/benchfmt's, which a test here cannot import.
type (
	benchFile struct {
		Sections []benchSection `json:"sections"`
	}
	benchSection struct {
		Name  string     `json:"name"`
		Rows  []benchRow `json:"rows"`
		Notes []string   `json:"notes,omitempty"`
	}
	benchRow struct {
		Metric    string   `json:"metric"`
		Unit      string   `json:"unit"`
		Ours      float64  `json:"ours"`
		Anacrolix *float64 `json:"anacrolix"`
		Better    string   `json:"better"`
		Target    string   `json:"target,omitempty"`
		Met       *bool    `json:"met,omitempty"`
	}
)

// readBenchFile reads the file at path; a missing file is an empty one.
func readBenchFile(path string) (benchFile, error) {
	var f benchFile
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

func writeBenchFile(path string, f benchFile) error {
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// mergeBenchSections writes secs into the file at path, replacing
// sections of the same name and keeping the others.
func mergeBenchSections(path string, secs []benchSection) error {
	f, err := readBenchFile(path)
	if err != nil {
		return err
	}
	for _, sec := range secs {
		i := slices.IndexFunc(f.Sections, func(o benchSection) bool { return o.Name == sec.Name })
		if i < 0 {
			f.Sections = append(f.Sections, sec)
		} else {
			f.Sections[i] = sec
		}
	}
	return writeBenchFile(path, f)
}
