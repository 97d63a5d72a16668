// Package benchfmt is the file format make bench's steps write and
// cmd/bench merges: sections of rows, ours against anacrolix. Programs
// under cmd use it; the go test benchmarks in dht, which cannot import it,
// write the same JSON with their own copy of these types.
package benchfmt

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
