// Package promtest reads a Prometheus /metrics page in tests: one scrape,
// parsed, and its series looked up by name and labels. It imports nothing
// of node, so the metrics package's own tests can use it too.
package promtest

import (
	"iter"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is a scrape, parsed: the metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape fetches url, with token as a bearer token unless it is empty,
// and parses it as the Prometheus text format; anything but 200 fails the
// test.
func Scrape(t testing.TB, url, token string) Families {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// Value is the value of the first series of name whose labels include
// labels ("k=v" each), a histogram's its count; -1 if there is none.
func (f Families) Value(name string, labels ...string) float64 {
	for m := range f.series(name, labels) {
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// Sum adds the counter and gauge values of every series of name whose
// labels include labels.
func (f Families) Sum(name string, labels ...string) float64 {
	var s float64
	for m := range f.series(name, labels) {
		s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return s
}

func (f Families) series(name string, labels []string) iter.Seq[*dto.Metric] {
	return func(yield func(*dto.Metric) bool) {
	next:
		for _, m := range f[name].GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for _, w := range labels {
				if k, v, _ := strings.Cut(w, "="); have[k] != v {
					continue next
				}
			}
			if !yield(m) {
				return
			}
		}
	}
}
