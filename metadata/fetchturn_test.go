package metadata

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"testing"
	"time"
)

// exclusiveFetch is a fetch of raw between "liar" and "honest" that has
// failed its hash with both contributing: it goes on one peer at a time.
// The liar's turn comes first.
func exclusiveFetch(t *testing.T, raw []byte, now time.Time) *Fetch {
	t.Helper()
	f := newTestFetch(t, raw, "liar", "honest")
	mustNext(t, f, "honest", now, 0)
	mustNext(t, f, "honest", now, 1)
	mustNext(t, f, "liar", now, 2)
	_ = f.Received("honest", 0, metaPiece(raw, 0))
	_ = f.Received("honest", 1, metaPiece(raw, 1))
	if err := f.Received("liar", 2, make([]byte, len(metaPiece(raw, 2)))); !errors.Is(err, ErrMetadataHash) {
		t.Fatal(err)
	}
	mustNext(t, f, "liar", now, 0)
	return f
}

// The owner of the turn that answers what it was asked and is
// then never asked again (it took ut_metadata back, or its asks never
// reach us) loses the turn after the retry time.
func TestFetchOwnerGoesQuiet(t *testing.T) {
	raw := bigInfo(t)
	now := time.Unix(1000, 0)
	f := exclusiveFetch(t, raw, now)
	mustNext(t, f, "liar", now, 1)
	_ = f.Received("liar", 0, make([]byte, MetadataPieceSize))
	_ = f.Received("liar", 1, make([]byte, MetadataPieceSize))
	if _, ok := f.Next("honest", now); ok { // as the caller's tick does
		t.Fatal("the turn passed while the owner delivers")
	}
	if _, ok := f.Next("honest", now.Add(fetchRetryAfter-time.Second)); ok {
		t.Fatal("the turn passed before the retry time")
	}
	mustNext(t, f, "honest", now.Add(fetchRetryAfter), 0)
}

// An owner that asks again itself, before anyone else, once its
// request has timed out does not get the piece again: it passes the turn.
func TestFetchOwnerCannotRenewTurn(t *testing.T) {
	raw := bigInfo(t)
	now := time.Unix(1000, 0)
	f := exclusiveFetch(t, raw, now)
	later := now.Add(fetchRetryAfter)
	if p, ok := f.Next("liar", later); ok {
		t.Fatalf("the owner renewed its timed-out request for piece %d", p)
	}
	mustNext(t, f, "honest", later, 0)
}

// A peer that takes its claim back (a handshake without
// ut_metadata) gives up its turn at once, and renewing the claim does not
// win a fresh one while others wait.
func TestFetchWithdraw(t *testing.T) {
	raw := bigInfo(t)
	now := time.Unix(1000, 0)
	f := exclusiveFetch(t, raw, now)
	f.Withdraw("liar")
	if err := f.SetSize("liar", len(raw)); err != nil {
		t.Fatal(err)
	}
	if p, ok := f.Next("liar", now); ok {
		t.Fatalf("the liar won the turn back by claiming again: piece %d", p)
	}
	mustNext(t, f, "honest", now, 0)
}

// Four sizes claimed before the true one, from four sources that
// never deliver, hold their places only for the retry time: then the true
// size is fetched.
func TestFetchCrowdOut(t *testing.T) {
	raw := bigInfo(t)
	f := NewFetch(sha1.Sum(raw))
	for i, p := range []string{"127.0.0.1:1", "127.0.0.2:1", "[2001:db8::1]:1", "[2001:db8:1::1]:1"} {
		if err := f.SetSize(p, len(raw)+1+i); err != nil {
			t.Fatal(err)
		}
	}
	const honest = "127.0.0.9:9"
	if err := f.SetSize(honest, len(raw)); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	if _, ok := f.Next(honest, now); ok {
		t.Fatal("a fifth size fetched at once")
	}
	if _, ok := f.Next(honest, now.Add(fetchRetryAfter-time.Second)); ok {
		t.Fatal("a place given up before the retry time")
	}
	now = now.Add(fetchRetryAfter)
	for p := range 3 {
		mustNext(t, f, honest, now, p)
		if err := f.Received(honest, p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Done() {
		t.Fatal("not done")
	}
}

// Claimants count per IPv4 address and per IPv6 /64, so that
// one host with many addresses of its /64 is one vote.
func TestFetchClaimantsPer64(t *testing.T) {
	f := NewFetch(InfoHash{})
	if err := f.SetSize("127.0.0.1:1", 1000); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := f.SetSize(fmt.Sprintf("[2001:db8::%x]:1", i+1), 2000); err != nil {
			t.Fatal(err)
		}
	}
	if f.Size() != 1000 {
		t.Fatalf("size %d: one /64 outvoted one IPv4 address", f.Size())
	}
	if err := f.SetSize("[2001:db8:0:1::1]:1", 2000); err != nil {
		t.Fatal(err)
	}
	if f.Size() != 2000 {
		t.Fatalf("size %d: two /64s are two votes", f.Size())
	}
}

// Whatever the sizes claimed and however long it runs, a fetch
// holds at most MaxCandidateSizes sizes (each at most its own bytes), and
// those that deliver nothing take turns, so that every claimed size is
// asked in the end.
func TestFetchRotationBound(t *testing.T) {
	raw := bigInfo(t)
	f := NewFetch(sha1.Sum(raw))
	const sizes = 3 * MaxCandidateSizes
	peer := func(i int) string { return fmt.Sprintf("127.0.3.%d:1", i) }
	for i := range sizes {
		if err := f.SetSize(peer(i), len(raw)+i); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Unix(1000, 0)
	asked := map[int]bool{}
	for round := range 4 * sizes {
		for i := range sizes {
			if _, ok := f.Next(peer(i), now); ok {
				asked[i] = true
			}
			if len(f.groups) > MaxCandidateSizes {
				t.Fatalf("round %d: %d sizes held, bound %d", round, len(f.groups), MaxCandidateSizes)
			}
			held := 0
			for _, g := range f.groups {
				held += g.size
			}
			if held > MaxCandidateSizes*MaxMetadataSize {
				t.Fatalf("%d bytes held", held)
			}
		}
		now = now.Add(fetchRetryAfter)
	}
	if len(asked) != sizes {
		t.Fatalf("%d of %d sizes asked", len(asked), sizes)
	}
	if len(f.benched) > sizes || len(f.order) > sizes {
		t.Fatalf("benched %d, order %d: more than the %d sizes claimed", len(f.benched), len(f.order), sizes)
	}
	for i := range sizes {
		f.PeerGone(peer(i))
	}
	if len(f.benched)+len(f.order)+len(f.groups) != 0 {
		t.Fatal("sizes nobody claims are remembered")
	}
}

// A size that delivers keeps its place, however many sizes are
// claimed after it.
func TestFetchBusySizeKeepsPlace(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "127.0.0.1:1")
	now := time.Unix(1000, 0)
	mustNext(t, f, "127.0.0.1:1", now, 0)
	mustNext(t, f, "127.0.0.1:1", now, 1)
	if err := f.Received("127.0.0.1:1", 0, metaPiece(raw, 0)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 * MaxCandidateSizes {
		for j := range 2 { // two sources each: they outrank the one
			if err := f.SetSize(fmt.Sprintf("127.0.%d.%d:1", 10+i, j), len(raw)+1+i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if f.groups[len(raw)] == nil || len(f.groups) > MaxCandidateSizes {
		t.Fatalf("held: %v, %d sizes", f.groups[len(raw)] != nil, len(f.groups))
	}
	now = now.Add(fetchRetryAfter / 2)
	mustNext(t, f, "127.0.0.1:1", now, 2)
	for p := 1; p < 3; p++ {
		if err := f.Received("127.0.0.1:1", p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Done() {
		t.Fatal("not done")
	}
}

// A refusal from the only claimant is not final: the piece is
// asked again after fetchRejectRetry, and later after a longer backoff if
// it refuses again.
func TestFetchRejectRetry(t *testing.T) {
	raw := bigInfo(t)
	const only = "127.0.0.1:1"
	f := newTestFetch(t, raw, only)
	now := time.Unix(1000, 0)
	mustNext(t, f, only, now, 0)
	mustNext(t, f, only, now, 1)
	f.Rejected(only, 0, now)
	_ = f.Received(only, 1, metaPiece(raw, 1))
	mustNext(t, f, only, now, 2)
	_ = f.Received(only, 2, metaPiece(raw, 2))
	if p, ok := f.Next(only, now.Add(fetchRejectRetry-time.Millisecond)); ok {
		t.Fatalf("piece %d asked again before the backoff", p)
	}
	now = now.Add(fetchRejectRetry)
	mustNext(t, f, only, now, 0)
	f.Rejected(only, 0, now)
	if _, ok := f.Next(only, now.Add(2*fetchRejectRetry-time.Millisecond)); ok {
		t.Fatal("the backoff did not grow")
	}
	now = now.Add(2 * fetchRejectRetry)
	mustNext(t, f, only, now, 0)
	// However often it refuses, it is asked again within the cap.
	for range 20 {
		f.Rejected(only, 0, now)
		now = now.Add(fetchRejectRetryMax)
		mustNext(t, f, only, now, 0)
	}
	if err := f.Received(only, 0, metaPiece(raw, 0)); err != nil || !f.Done() {
		t.Fatalf("done %v: %v", f.Done(), err)
	}
}

// A refusal reports that it freed a request only when it answers one
// outstanding to that peer: a stream of refusals frees nothing more.
func TestFetchRejectedFrees(t *testing.T) {
	raw := bigInfo(t)
	const a, b = "127.0.0.1:1", "127.0.0.2:1"
	f := newTestFetch(t, raw, a, b)
	now := time.Unix(1000, 0)
	mustNext(t, f, a, now, 0)
	if !f.Rejected(a, 0, now) {
		t.Fatal("refusing its outstanding request freed nothing")
	}
	for range 3 {
		if f.Rejected(a, 0, now) || f.Rejected(a, 1, now) {
			t.Fatal("a refusal of nothing outstanding freed a request")
		}
	}
	mustNext(t, f, b, now, 0) // the freed piece goes to the other claimant
}
