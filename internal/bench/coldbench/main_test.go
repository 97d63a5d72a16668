package main

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// The whole benchmark, small: 50 servers, no delay, one lookup of each
// implementation as its own process, both of which must find all 8
// announced peers; so the program, its two lookers' command lines and
// the report cannot rot.
func TestColdbenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds node and anacrolixpeers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	o := options{nodes: 50, runs: 1, infoHashes: 2, timeout: 30 * time.Second, netByte: 93, goCmd: "go", quiet: true}
	res, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for name, ls := range map[string][]lookup{"ours": res.ours, "anacrolix": res.anacrolix} {
		if len(ls) != 1 || ls[0].peers != announcers || ls[0].eighth < ls[0].first || ls[0].first <= 0 {
			t.Errorf("%s: %+v, want one lookup that found all %d", name, ls, announcers)
		}
		if len(ls) == 1 && (ls[0].query < 0 || ls[0].query > ls[0].first) {
			t.Errorf("%s: first query heard at %v, first peer at %v", name, ls[0].query, ls[0].first)
		}
	}
	sec := res.section(o)
	if len(sec.Rows) != 6 || sec.Rows[3].Met == nil || !strings.Contains(sec.Name, "50 anacrolix servers") {
		t.Errorf("section %+v", sec)
	}
	var b strings.Builder
	printTable(&b, res, o)
	if !strings.Contains(b.String(), "ours/anacrolix") {
		t.Errorf("table:\n%s", b.String())
	}
}

// A lookup that never found all 8 counts as slower than any, and is
// written as -1 in the JSON, which has no infinity.
func TestMissCountsAsSlowest(t *testing.T) {
	ls := []lookup{{eighth: 100 * time.Millisecond}, {eighth: -1}, {eighth: 300 * time.Millisecond}}
	if got := pct(ls, eighthOf, 50); got != 300 {
		t.Fatalf("median %v, want 300", got)
	}
	if got := pct(ls, eighthOf, 90); !math.IsInf(got, 1) || finite(got) != -1 || fmtMs(got) != "none" {
		t.Fatalf("p90 %v", got)
	}
	r := &results{ours: ls[1:2], anacrolix: ls[:1]}
	if !math.IsInf(r.ratio(), 1) {
		t.Fatalf("ratio %v with ours never done", r.ratio())
	}
	r = &results{ours: ls[:1], anacrolix: ls[1:2]}
	if r.ratio() != 0 {
		t.Fatalf("ratio %v with anacrolix never done", r.ratio())
	}
}
