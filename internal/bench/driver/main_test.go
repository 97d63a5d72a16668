package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as a step's program: with BENCH_TEST_HELPER set
// it writes JSON to BENCH_TEST_JSON, fails or hangs, and exits.
func TestMain(m *testing.M) {
	switch os.Getenv("BENCH_TEST_HELPER") {
	case "":
		os.Exit(m.Run())
	case "write":
		if err := os.WriteFile(os.Getenv("BENCH_TEST_JSON"), []byte(os.Getenv("BENCH_TEST_CONTENT")), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "silent":
		fmt.Println("helper: nothing to report")
		os.Exit(0)
	case "fail":
		for i := range 30 {
			fmt.Fprintf(os.Stderr, "helper line %d\n", i)
		}
		fmt.Fprintln(os.Stderr, "helper: the last words")
		os.Exit(3)
	case "hang":
		fmt.Println("helper hanging")
		time.Sleep(90 * time.Second)
		os.Exit(0)
	}
	os.Exit(2)
}

const fileA = `{"sections":[{"name":"fetch X","rows":[
 {"metric":"time to complete","unit":"s","ours":2,"anacrolix":4,"better":"lower","target":"<= 0.6x","met":true},
 {"metric":"peak RSS","unit":"MiB","ours":30,"anacrolix":25,"better":"lower"},
 {"metric":"no counterpart","unit":"peers","ours":8,"better":"higher"},
 {"metric":"zero counterpart","unit":"allocs","ours":0,"anacrolix":0,"better":"lower"},
 {"metric":"never","unit":"ms","ours":-1,"anacrolix":120,"better":"lower"}],
 "notes":["a note"]}]}`

const fileB = `{"sections":[{"name":"decode","rows":[{"metric":"get_peers decode","unit":"ns","ours":150,"anacrolix":600,"better":"lower"}]}]}`
const fileD = `{"sections":[{"name":"partial","rows":[{"metric":"m","unit":"","ours":1,"anacrolix":2,"better":"higher"}]}]}`
const fileC = `{"sections":[{"name":"decode","rows":[{"metric":"ping decode","unit":"ns","ours":90.5,"anacrolix":null,"better":"lower"}]}]}`

func helperStep(name, mode, content string, limit time.Duration) step {
	return step{name: name, limit: limit, cmds: []stepCmd{{
		argv: []string{os.Args[0], "-test.run", "^$"},
		env:  []string{"BENCH_TEST_HELPER=" + mode, "BENCH_TEST_JSON={json}", "BENCH_TEST_CONTENT=" + content},
	}}}
}

func TestRunMergeRender(t *testing.T) {
	steps := []step{
		helperStep("fetch", "write", fileA, 20*time.Second),
		helperStep("broken", "write", `{"sections":[`, 20*time.Second),
		helperStep("fails", "fail", "", 20*time.Second),
		helperStep("hangs", "hang", "", time.Second),
		helperStep("skipme", "fail", "", 20*time.Second),
		{name: "decode", limit: 20 * time.Second, cmds: append(
			helperStep("", "write", fileB, 0).cmds, helperStep("", "write", fileC, 0).cmds...)},
		{name: "partial", limit: 20 * time.Second, cmds: append(
			helperStep("", "silent", "", 0).cmds, helperStep("", "write", fileD, 0).cmds...)},
		helperStep("nojson", "silent", "", 20*time.Second),
	}
	var log bytes.Buffer
	r := runner{dir: t.TempDir(), goCmd: "go", grace: time.Second, log: &log}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	results := r.runAll(ctx, steps, map[string]bool{"skipme": true})
	if d := time.Since(began); d > 45*time.Second {
		t.Errorf("steps took %v; the hanging one was not stopped at its limit", d)
	}
	m := merge(results, machine{CPUModel: "test CPU", MemoryGiB: 1}, began)

	want := map[string]bool{"fetch": true, "broken": false, "fails": false, "hangs": false, "skipme": true, "decode": true,
		"partial": true, "nojson": false}
	for _, s := range m.Steps {
		if s.OK != want[s.Name] {
			t.Errorf("step %s: ok %v, want %v (error %q)", s.Name, s.OK, want[s.Name], s.Error)
		}
	}
	if got := strings.Join(m.failedSteps(), ","); got != "broken,fails,hangs,nojson" {
		t.Errorf("failed steps %q", got)
	}
	byName := map[string]stepResult{}
	for _, s := range m.Steps {
		byName[s.Name] = s
	}
	if s := byName["hangs"]; !strings.Contains(s.Error, "time limit") {
		t.Errorf("hanging step: error %q, want a time limit", s.Error)
	}
	if s := byName["fails"]; len(s.Tail) == 0 || s.Tail[len(s.Tail)-1] != "helper: the last words" || len(s.Tail) > 12 {
		t.Errorf("failing step: tail %q", s.Tail)
	}
	if s := byName["broken"]; !strings.Contains(s.Error, "unexpected end of JSON") {
		t.Errorf("broken step: error %q", s.Error)
	}
	if s := byName["nojson"]; !strings.Contains(s.Error, "wrote no JSON") || !slices.Contains(s.Tail, "helper: nothing to report") {
		t.Errorf("step without JSON: error %q, tail %q", s.Error, s.Tail)
	}
	if s := byName["partial"]; len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "wrote no JSON") {
		t.Errorf("step with one package silent: warnings %q", s.Warnings)
	}

	if len(m.Sections) != 3 {
		t.Fatalf("%d sections, want fetch X, one merged decode and partial: %+v", len(m.Sections), m.Sections)
	}
	fetch, decode := m.Sections[0], m.Sections[1]
	if fetch.Name != "fetch X" || fetch.Step != "fetch" || len(fetch.Rows) != 5 {
		t.Fatalf("fetch section %+v", fetch)
	}
	wantRatio := []float64{0.5, 1.2, math.NaN(), math.NaN(), math.NaN()} // NaN: none
	for i, r := range fetch.Rows {
		switch {
		case math.IsNaN(wantRatio[i]) && r.Ratio != nil:
			t.Errorf("%s: ratio %v, want none", r.Metric, *r.Ratio)
		case !math.IsNaN(wantRatio[i]) && r.Ratio == nil:
			t.Errorf("%s: no ratio, want %v", r.Metric, wantRatio[i])
		case !math.IsNaN(wantRatio[i]) && math.Abs(*r.Ratio-wantRatio[i]) > 1e-9:
			t.Errorf("%s: ratio %v, want %v", r.Metric, *r.Ratio, wantRatio[i])
		}
	}
	if decode.Step != "decode" || len(decode.Rows) != 2 || decode.Rows[0].Ratio == nil || *decode.Rows[0].Ratio != 0.25 {
		t.Errorf("decode section %+v", decode)
	}

	var out bytes.Buffer
	m.TotalSeconds = 12
	render(&out, m)
	table := out.String()
	t.Logf("table:\n%s", table)
	for _, s := range []string{
		"== fetch X",
		"time to complete (s)",
		"0.50x", "1.20x", "0.25x",
		"<= 0.6x", "yes",
		"== step fails FAILED",
		"| helper: the last words",
		"== step hangs FAILED",
		"skipme skipped",
		"   * a note",
		"90.5",
		"   ! step partial: wrote no JSON",
		"== step nojson FAILED",
	} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	if strings.Contains(table, "helper line 0\n") {
		t.Errorf("table has more than the tail of the failing step's output:\n%s", table)
	}
	// One table: every metric line has the same column layout.
	lines := strings.Split(table, "\n")
	var header string
	for _, l := range lines {
		if strings.HasPrefix(l, "metric ") {
			header = l
		}
	}
	if header == "" {
		t.Fatalf("no header line:\n%s", table)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "time to complete") && len(l) != len(header) {
			t.Errorf("row %q not aligned with header %q", l, header)
		}
	}

	b, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Date, Go string
		CPUs     int
		Steps    []struct {
			Name string
			OK   bool
		}
		Sections []struct {
			Name string
			Rows []struct {
				Metric string
				Ratio  *float64
			}
		}
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Date == "" || back.Go == "" || back.CPUs < 1 || len(back.Steps) != 8 || len(back.Sections) != 3 ||
		back.Sections[0].Rows[0].Ratio == nil || *back.Sections[0].Rows[0].Ratio != 0.5 || back.Sections[0].Rows[2].Ratio != nil {
		t.Errorf("merged JSON: %s", b)
	}
	if !strings.Contains(log.String(), "bench: hangs: FAILED") {
		t.Errorf("progress log lacks the hanging step's end:\n%s", log.String())
	}
}

func TestDeadlineLeavesStepsUnrun(t *testing.T) {
	r := runner{dir: t.TempDir(), goCmd: "go", grace: time.Second, log: &bytes.Buffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), minStepTime/2)
	defer cancel()
	res := r.runAll(ctx, []step{helperStep("late", "write", fileB, time.Minute)}, nil)
	if len(res) != 1 || res[0].OK || !strings.Contains(res[0].Error, "deadline") {
		t.Errorf("%+v", res)
	}
}

func TestParseSkip(t *testing.T) {
	if s, err := parseSkip("fetch, decode", defaultSteps); err != nil || !s["fetch"] || !s["decode"] || s["lookup"] {
		t.Errorf("%v %v", s, err)
	}
	if _, err := parseSkip("fetch,nope", defaultSteps); err == nil {
		t.Error("unknown step accepted")
	}
}

func TestDefaultStepsWriteJSON(t *testing.T) {
	// Every command must be told where to write, and the limits must fit
	// the global deadline's spirit: no single step may take it all.
	for _, s := range defaultSteps {
		if s.limit <= minStepTime || s.limit >= globalDeadline {
			t.Errorf("%s: limit %v", s.name, s.limit)
		}
		for _, c := range s.cmds {
			all := strings.Join(append(append([]string{}, c.argv...), c.env...), " ")
			if strings.Count(all, "{json}") != 1 {
				t.Errorf("%s: %q does not name its JSON file once", s.name, all)
			}
		}
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{3: "3", 3.876: "3.88", 25.33: "25.3", 262.4: "262", 0.0123: "0.0123", 1e6: "1000000"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
