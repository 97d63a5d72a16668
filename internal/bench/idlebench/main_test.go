package main

import (
	"math/rand/v2"
	"testing"

	"node/routing"
)

// The fill nodes are only worth starting if each lands in the bucket it
// was made for.
func TestIDAtDepth(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		self := routing.RandomID(r)
		for d := range 160 {
			id := idAtDepth(self, d, r)
			if got := routing.CommonPrefixLen(self, id); got != d {
				t.Fatalf("depth %d: CommonPrefixLen %d", d, got)
			}
		}
	}
}
