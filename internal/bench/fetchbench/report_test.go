package main

import (
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"node/internal/bench/benchfmt"
	"node/metadata"
)

func testRuns(clients map[string][]float64) []runResult {
	var all []runResult
	for client, completes := range clients {
		for i, d := range completes {
			all = append(all, runResult{Client: client, Run: i + 1, Metadata: 0.1, Complete: d, MiBps: 1024 / d, CPU: 1, MaxRSSMiB: 20, Peers: 1})
		}
	}
	return all
}

func testContent() *content {
	return &content{mi: &metadata.MetaInfo{Info: &metadata.Info{PieceLength: pieceLength, Length: 4 * pieceLength, Pieces: make([][20]byte, 4)}}}
}

// With libtorrent's runs, the section has the ratio of the medians of the
// time to complete as a row, its figures in a note, and no reference note.
func TestSectionWithLibtorrent(t *testing.T) {
	all := testRuns(map[string][]float64{
		"ours":       {2, 1, 3},
		"anacrolix":  {4, 5, 3},
		"libtorrent": {2.5, 4, 1.5}, // median 2.5
	})
	sec := makeSection("t", scenarios[0], testContent(), []netip.AddrPort{netip.MustParseAddrPort("127.0.91.1:1")}, all,
		libtorrent{python: "python3", version: "2.0.8.0"}, nil)
	var found bool
	for _, r := range sec.Rows {
		if r.Metric != "time to complete vs libtorrent (ours/libtorrent)" {
			continue
		}
		found = true
		if r.Ours != 2/2.5 || r.Anacrolix != nil || r.Unit != "x" || r.Better != "lower" || r.Target != "< 1.0" || r.Met == nil || !*r.Met {
			t.Errorf("libtorrent row %+v, want ours 0.8, no anacrolix, target < 1.0, met", r)
		}
	}
	if !found {
		t.Fatalf("no libtorrent row in %+v", sec.Rows)
	}
	notes := strings.Join(sec.Notes, "\n")
	if !strings.Contains(notes, "libtorrent 2.0.8.0") || !strings.Contains(notes, "complete 2.50 s") {
		t.Errorf("no note with libtorrent's medians in\n%s", notes)
	}
	if strings.Contains(notes, "not run here") {
		t.Errorf("reference note kept although libtorrent ran:\n%s", notes)
	}

	// Slower than libtorrent: not met.
	all = testRuns(map[string][]float64{"ours": {3}, "anacrolix": {4}, "libtorrent": {2}})
	sec = makeSection("t", scenarios[0], testContent(), nil, all, libtorrent{python: "python3", version: "2.0.8.0"}, nil)
	for _, r := range sec.Rows {
		if strings.HasPrefix(r.Metric, "time to complete vs libtorrent") && (r.Met == nil || *r.Met || r.Ours != 1.5) {
			t.Errorf("libtorrent row %+v, want ours 1.5, not met", r)
		}
	}
}

// Without libtorrent, the section keeps the reference note and says why.
func TestSectionWithoutLibtorrent(t *testing.T) {
	all := testRuns(map[string][]float64{"ours": {2}, "anacrolix": {4}})
	sec := makeSection("t", scenarios[0], testContent(), nil, all, libtorrent{why: "python3 with libtorrent not available (x)"}, nil)
	for _, r := range sec.Rows {
		if strings.Contains(r.Metric, "libtorrent") {
			t.Errorf("libtorrent row %+v without libtorrent runs", r)
		}
	}
	notes := strings.Join(sec.Notes, "\n")
	if !strings.Contains(notes, "reference, not run here: python3 with libtorrent not available (x)") {
		t.Errorf("no reference note with the reason in\n%s", notes)
	}
}

func scenarioOf(t *testing.T, key string) scenario {
	for _, s := range scenarios {
		if s.key == key {
			return s
		}
	}
	t.Fatalf("no scenario %s", key)
	return scenario{}
}

// The transport sections compare each leecher with its own plain-TCP run
// of 1g-ours: uTP by throughput, encryption by the CPU of both ends per
// GiB; the second column is libtorrent's.
func TestTransportSection(t *testing.T) {
	c := testContent()
	c.total = 512 << 20 // half a GiB: per-GiB figures double
	lt := libtorrent{python: "python3", version: "2.0.8.0"}
	plain := []runResult{
		{Client: "ours", MiBps: 200, CPU: 3, SeederCPU: 1},
		{Client: "anacrolix", MiBps: 150, CPU: 6, SeederCPU: 1},
		{Client: "libtorrent", MiBps: 100, CPU: 4, SeederCPU: 1},
	}
	all := []runResult{
		{Client: "ours", MiBps: 120, CPU: 2, SeederCPU: 0.6, Links: []string{"tcp/rc4"}},
		{Client: "libtorrent", MiBps: 40, CPU: 3, SeederCPU: 1, Links: []string{"tcp/rc4"}},
	}
	find := func(rows []benchfmt.Row, prefix string) benchfmt.Row {
		t.Helper()
		for _, r := range rows {
			if strings.HasPrefix(r.Metric, prefix) {
				return r
			}
		}
		t.Fatalf("no row %q in %+v", prefix, rows)
		return benchfmt.Row{}
	}

	sec := makeSection("t", scenarioOf(t, "utp"), c, nil, all, lt, plain)
	r := find(sec.Rows, "throughput over uTP / over plain TCP (1g-ours")
	if r.Ours != 0.6 || r.Anacrolix == nil || *r.Anacrolix != 0.4 || r.Met != nil {
		t.Errorf("uTP row against 1g-ours %+v, want ours 0.6, libtorrent 0.4, no target", r)
	}
	for _, r := range sec.Rows {
		if strings.Contains(r.Metric, "the same") {
			t.Errorf("row %+v without an ours-tcp run", r)
		}
	}
	// The target is judged at one size: ours over uTP against ours over
	// TCP from the same seeder.
	withTCP := append(slices.Clone(all), runResult{Client: oursTCP, MiBps: 300, CPU: 1, SeederCPU: 0.5, Links: []string{"tcp/none"}})
	sec = makeSection("t", scenarioOf(t, "utp"), c, nil, withTCP, lt, plain)
	r = find(sec.Rows, "throughput over uTP / over plain TCP (ours, the same")
	if r.Ours != 0.4 || r.Met == nil || *r.Met {
		t.Errorf("same-size uTP row %+v, want 0.4 (not met)", r)
	}
	if notes := strings.Join(sec.Notes, "\n"); !strings.Contains(notes, "300.0 MiB/s, leecher 2.00 CPU-s/GiB, seeder 1.00 CPU-s/GiB") {
		t.Errorf("no note of the TCP run's figures in\n%s", notes)
	}
	if r := find(sec.Rows, "leecher CPU user+sys per GiB"); r.Ours != 4 || *r.Anacrolix != 6 {
		t.Errorf("leecher CPU row %+v, want 4 and 6 per GiB", r)
	}

	sec = makeSection("t", scenarioOf(t, "rc4"), c, nil, all, lt, plain)
	r = find(sec.Rows, "extra CPU over plain TCP")
	// ours (2+0.6)/0.5 - (3+1) = 1.2; libtorrent (3+1)/0.5 - (4+1) = 3.
	if math.Abs(r.Ours-1.2) > 1e-9 || r.Anacrolix == nil || math.Abs(*r.Anacrolix-3) > 1e-9 || r.Met == nil || *r.Met {
		t.Errorf("rc4 row %+v, want ours 1.2 (not met), libtorrent 3", r)
	}

	// Without 1g-ours in the run there is nothing to compare with, and
	// without libtorrent's runs no second column.
	sec = makeSection("t", scenarioOf(t, "rc4"), c, nil, all[:1], libtorrent{why: "x"}, nil)
	for _, r := range sec.Rows {
		if strings.HasPrefix(r.Metric, "extra CPU") || r.Anacrolix != nil {
			t.Errorf("row %+v without 1g-ours or libtorrent", r)
		}
	}
}

// A run counts only if every peer that delivered data was connected over
// the scenario's transport.
func TestCarried(t *testing.T) {
	for _, tc := range []struct {
		key, link string
		want      bool
	}{
		{"utp", "utp/none", true}, {"utp", "tcp/none", false}, {"utp", "utp/rc4", true},
		{"rc4", "tcp/rc4", true}, {"rc4", "tcp/header", false}, {"rc4", "tcp/none", false}, {"rc4", "utp/rc4", false},
		{"1g-ours", "tcp/none", true}, {"1g-ours", "utp/none", false},
	} {
		if got := scenarioOf(t, tc.key).carried(tc.link); got != tc.want {
			t.Errorf("%s carried(%s) = %v, want %v", tc.key, tc.link, got, tc.want)
		}
	}
	var r runResult
	for _, l := range []string{"utp/none", "tcp/none", "utp/none"} {
		r.addLink(l)
	}
	if strings.Join(r.Links, " ") != "tcp/none utp/none" {
		t.Errorf("links %v, want the two, sorted", r.Links)
	}
}

// A fetch over uTP that completes within a second prints no progress
// event, and its complete event comes after its peers left: the links
// and the peer count come from the complete event alone.
func TestTakeCompleteEvent(t *testing.T) {
	r := runResult{Peers: -1}
	completed := false
	for _, line := range []string{
		`{"event":"metadata","bytes":134217728,"after_ms":12}`,
		`{"event":"complete","bytes":134217728,"after_ms":950,"peers":0,"data_conns":1,"links":["utp/none"],"downloaded_by":{"utp/none":134217728}}`,
	} {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		r.take(ev, &completed)
	}
	if r.Peers != 1 || strings.Join(r.Links, " ") != "utp/none" || len(r.Events) != 2 {
		t.Fatalf("peers %d, links %v, %d events", r.Peers, r.Links, len(r.Events))
	}
	if !scenarioOf(t, "utp").carried(r.Links[0]) {
		t.Fatal("the utp row refuses its own link")
	}
}
