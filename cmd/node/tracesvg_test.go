package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"node/dht"
	"node/routing"
)

// svgMarks parses the whole file as XML and counts the mark elements by
// the class that says how each query ended.
func svgMarks(t *testing.T, path string) (map[string]int, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]int{}
	var text strings.Builder
	d := xml.NewDecoder(bytes.NewReader(data))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s does not parse as XML: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Space + " " + tok.Name.Local
			}
			for _, a := range tok.Attr {
				if a.Name.Local != "class" {
					continue
				}
				if f := strings.Fields(a.Value); slices.Contains(f, "mark") {
					for _, c := range f {
						if c != "mark" {
							marks[c]++
						}
					}
				}
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return marks, text.String()
}

var answersRE = regexp.MustCompile(`(\d+) peers, (\d+) queries, (\d+) answers`)

// node peers --trace draws the lookup: an SVG that parses, with one mark
// per answer, also when nothing was found; it refuses a directory before
// the lookup and replaces an existing file whole.
func TestPeersTrace(t *testing.T) {
	boot := startNetwork(t, 198, 12)
	ih := strings.Repeat("cd", 20)
	if code, _, errOut := runCmd("peers", "--listen", "127.0.198.100:0", "--bootstrap", boot,
		"--announce", "7100", "--timeout", "20s", ih); code != exitOK {
		t.Fatalf("announce exited %d: %s", code, errOut)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "out.svg")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("peers", "--listen", "127.0.198.101:0", "--bootstrap", boot, "--timeout", "20s", "--trace", path, ih)
	if code != exitOK || strings.TrimSpace(out) != "127.0.198.100:7100" {
		t.Fatalf("lookup exited %d: %q %s", code, out, errOut)
	}
	m := answersRE.FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("no summary in %q", errOut)
	}
	queries, _ := strconv.Atoi(m[2])
	answers, _ := strconv.Atoi(m[3])
	marks, text := svgMarks(t, path)
	if got := marks["answered"] + marks["answered-peers"]; got != answers || marks["answered-peers"] == 0 {
		t.Errorf("marks %v, want %d answers (some with peers)", marks, answers)
	}
	total := 0
	for _, n := range marks {
		total += n
	}
	if total != queries {
		t.Errorf("%d marks in all, want one per query: %d", total, queries)
	}
	if !strings.Contains(text, ih) || !strings.Contains(text, m[2]+" queries, "+m[3]+" answers, 1 peers found") {
		t.Errorf("title: %q", text[:min(len(text), 300)])
	}

	// Nobody announced this one, and one bootstrap address never answers:
	// the lookup ends with nothing, and is drawn all the same, the silent
	// node among those that did not answer, on the row for unknown IDs.
	// A network of fewer than K nodes, so that the bootstrap running
	// beside the lookup never fills the table: a lookup that starts from
	// a table of K nodes leaves the bootstrap addresses out, and whether
	// the bootstrap's first answers came first was a race.
	small := startNetwork(t, 205, routing.K/2)
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 205, 200)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	other := strings.Repeat("5a", 20)
	empty := filepath.Join(dir, "empty.svg")
	code, _, errOut = runCmd("peers", "--listen", "127.0.205.102:0", "--bootstrap", silent.LocalAddr().String()+","+small,
		"--timeout", "20s", "--trace", empty, other)
	if code != exitNoPeers {
		t.Fatalf("unknown hash: exit %d, %s", code, errOut)
	}
	marks, text = svgMarks(t, empty)
	if marks["answered-peers"] != 0 || marks["answered"] == 0 || marks["timeout"]+marks["abandoned"] != 1 {
		t.Errorf("unknown hash: marks %v", marks)
	}
	if !strings.Contains(text, silent.LocalAddr().String()+" get_peers, ID unknown") {
		t.Errorf("no tooltip for the silent node in %q", text)
	}

	// A directory is refused before anything runs, and left alone.
	code, _, errOut = runCmd("peers", "--listen", "127.0.198.103:0", "--bootstrap", boot, "--timeout", "20s", "--trace", dir, ih)
	if code != exitUsage || !strings.Contains(errOut, "is a directory") {
		t.Errorf("--trace DIR: exit %d, %s", code, errOut)
	}
	code, _, _ = runCmd("peers", "--listen", "127.0.198.103:0", "--bootstrap", boot, "--timeout", "20s", "--trace", filepath.Join(dir, "no", "such.svg"), ih)
	if code != exitUsage {
		t.Errorf("--trace in a missing directory: exit %d", code)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"empty.svg", "out.svg"}) {
		t.Errorf("files left: %q, want the two pictures and no temporary file", names)
	}
}

// A lookup cut short before any node answered still gets its picture:
// timeouts and abandoned queries drawn, a title saying how it ended.
func TestTraceSVGNoAnswers(t *testing.T) {
	tr := dht.NewTrace()
	path := filepath.Join(t.TempDir(), "t.svg")
	err := writeTraceFile(path, tr, traceSummary{Method: "get_peers", Duration: time.Second, Err: errors.New(`<b>&"bad"`)})
	if err != nil {
		t.Fatal(err)
	}
	marks, text := svgMarks(t, path)
	if len(marks) != 0 || !strings.Contains(text, `<b>&"bad"`) {
		t.Errorf("marks %v, text %q", marks, text)
	}
}
