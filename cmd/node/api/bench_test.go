package api_test

import (
	"context"
	"testing"

	"node/cmd/node/api"
	"node/cmd/node/api/apitest"
)

// BenchmarkList100: listing 100 torrents through a loopback HTTP round
// trip, server guards and client decoding included.
func BenchmarkList100(b *testing.B) {
	be := &apitest.Backend{}
	for _, t := range apitest.Torrents(100) {
		be.Put(t)
	}
	s := start(b, be)
	c := client(s, testToken)
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ts, err := c.List(ctx)
		if err != nil || len(ts) != 100 {
			b.Fatal(len(ts), err)
		}
	}
}

var _ = api.MaxResponseBytes
