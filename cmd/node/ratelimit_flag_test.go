package main

import (
	"github.com/spf13/pflag"
	"io"
	"testing"
)

func TestParseRate(t *testing.T) {
	good := map[string]int64{
		"0":         0,
		"500":       500,
		"500B":      500,
		"500K":      500_000,
		"500k":      500_000,
		"500KB":     500_000,
		"2M":        2_000_000,
		"2MB":       2_000_000,
		"1G":        1_000_000_000,
		"1.5MiB":    1_572_864,
		"1.5mib":    1_572_864,
		"64KiB":     65_536,
		"1GiB":      1 << 30,
		"0.5K":      500,
		" 2 M ":     2_000_000,
		"2M/s":      2_000_000,
		"100KiB/s":  102_400,
		"1.0000001": 1,
	}
	for in, want := range good {
		got, err := parseRate(in)
		if err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "K", "-1", "-2M", "2X", "2 MiBs", "1.2.3", ".", "1e6", "0.001", "0.4", "10000000000G", "NaN", "Inf", "2/s/s"} {
		if got, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) = %d, want an error", in, got)
		}
	}
}

func TestRateFlags(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	up, down := registerRateFlags(fs)
	if err := fs.Parse([]string{"--max-upload-rate", "1.5MiB", "--max-download-rate=500K"}); err != nil {
		t.Fatal(err)
	}
	if up.bytes != 1_572_864 || down.bytes != 500_000 {
		t.Fatalf("up %d, down %d", up.bytes, down.bytes)
	}
	if err := fs.Parse([]string{"--max-upload-rate", "fast"}); err == nil {
		t.Fatal("accepted --max-upload-rate fast")
	}
}
