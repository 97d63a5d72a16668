package metadata

import (
	"testing"
	"time"
)

// Asked tells a piece a peer was asked for, until it answers, from one it
// was not.
func TestFetchAsked(t *testing.T) {
	f := NewFetch(InfoHash{1})
	const a, b = "127.0.0.1:1", "127.0.0.2:1"
	for _, p := range []string{a, b} {
		if err := f.SetSize(p, 2*MetadataPieceSize); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	piece, ok := f.Next(a, now)
	if !ok {
		t.Fatal("nothing to ask")
	}
	if !f.Asked(a, piece) || f.Asked(b, piece) || f.Asked(a, 1-piece) || f.Asked(a, -1) || f.Asked(a, 2) {
		t.Fatal("Asked does not match the one request made")
	}
	if err := f.Received(a, piece, make([]byte, MetadataPieceSize)); err != nil {
		t.Fatal(err)
	}
	if f.Asked(a, piece) {
		t.Fatal("still asked once answered")
	}
}
