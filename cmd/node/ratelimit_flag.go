package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// registerRateFlags adds --max-upload-rate and --max-download-rate.
func registerRateFlags(fs *pflag.FlagSet) (up, down *rateFlag) {
	up, down = new(rateFlag), new(rateFlag)
	fs.Var(up, "max-upload-rate", "cap on piece data sent, in bytes/s over all peers, e.g. 500K, 2M, 1.5MiB (K/M/G: powers of 1000; KiB/MiB/GiB: powers of 1024; 0: unlimited)")
	fs.Var(down, "max-download-rate", "cap on piece data received, in bytes/s over all peers; same `rate` syntax as --max-upload-rate")
	return up, down
}

// rateFlag is a rate in bytes per second, parsed by parseRate.
type rateFlag struct{ bytes int64 }

func (r *rateFlag) String() string {
	if r == nil {
		return "0"
	}
	return strconv.FormatInt(r.bytes, 10)
}

func (*rateFlag) Type() string { return "rate" }

func (r *rateFlag) Set(s string) error {
	n, err := parseRate(s)
	if err != nil {
		return err
	}
	r.bytes = n
	return nil
}

// rateUnits are parseRate's units, lower-cased: K, M and G are decimal
// (as in network speeds), KiB, MiB and GiB binary.
var rateUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// parseRate parses a rate in bytes per second: a non-negative number,
// possibly fractional, then an optional unit — B; K or KB (1000), M or MB
// (1000²), G or GB (1000³); KiB (1024), MiB (1024²), GiB (1024³) — case
// insensitive, optionally followed by "/s". "500K" is 500000, "2M"
// 2000000, "1.5MiB" 1572864. 0 means unlimited; a positive rate that
// rounds to less than 1 byte/s is refused rather than taken as unlimited.
func parseRate(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	if len(s) >= 2 && strings.EqualFold(s[len(s)-2:], "/s") {
		s = strings.TrimSpace(s[:len(s)-2])
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("rate %q: negative", in)
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := rateUnits[unit]
	if !ok {
		return 0, fmt.Errorf("rate %q: unknown unit %q (use K, M, G, KiB, MiB or GiB)", in, s[i:])
	}
	if num == "" {
		return 0, fmt.Errorf("rate %q: no number", in)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("rate %q: bad number", in)
	}
	v := math.Round(f * mult)
	switch {
	case v >= 1<<62:
		return 0, fmt.Errorf("rate %q: too large", in)
	case v == 0 && f != 0:
		return 0, fmt.Errorf("rate %q: below 1 byte/s (0 is unlimited)", in)
	}
	return int64(v), nil
}
