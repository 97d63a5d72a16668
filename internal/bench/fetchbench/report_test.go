package main

import (
	"net/netip"
	"strings"
	"testing"

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
		libtorrent{python: "python3", version: "2.0.8.0"})
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
	sec = makeSection("t", scenarios[0], testContent(), nil, all, libtorrent{python: "python3", version: "2.0.8.0"})
	for _, r := range sec.Rows {
		if strings.HasPrefix(r.Metric, "time to complete vs libtorrent") && (r.Met == nil || *r.Met || r.Ours != 1.5) {
			t.Errorf("libtorrent row %+v, want ours 1.5, not met", r)
		}
	}
}

// Without libtorrent, the section keeps the reference note and says why.
func TestSectionWithoutLibtorrent(t *testing.T) {
	all := testRuns(map[string][]float64{"ours": {2}, "anacrolix": {4}})
	sec := makeSection("t", scenarios[0], testContent(), nil, all, libtorrent{why: "python3 with libtorrent not available (x)"})
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
