package main

import "testing"

func TestETA(t *testing.T) {
	for _, c := range []struct {
		left int64
		rate float64
		want string
	}{
		{1000, 10, "1m40s"},
		{3 << 30, 1 << 20, "51m12s"},
		{1, 1000, "0s"},
		{0, 1000, "--"},
		{1000, 0, "--"},
	} {
		if got := eta(c.left, c.rate); got != c.want {
			t.Errorf("eta(%d, %v) = %q, want %q", c.left, c.rate, got, c.want)
		}
	}
}
