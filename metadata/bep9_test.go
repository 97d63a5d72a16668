package metadata

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// bigInfo is a real info dict of about 40 KiB: three metadata pieces of
// 16 KiB, 16 KiB and the rest.
func bigInfo(t *testing.T) []byte {
	t.Helper()
	var pieces []byte
	for i := range 2000 {
		h := sha1.Sum(binary.BigEndian.AppendUint32(nil, uint32(i)))
		pieces = append(pieces, h[:]...)
	}
	raw := enc(t, map[string]any{
		"name":         "big",
		"piece length": int64(16 << 10),
		"length":       int64(2000*16<<10 - 100),
		"pieces":       string(pieces),
	})
	if n := (len(raw) + MetadataPieceSize - 1) / MetadataPieceSize; n != 3 {
		t.Fatalf("test info dict is %d bytes, %d pieces", len(raw), n)
	}
	return raw
}

// metaPiece is what an honest peer sends for piece i.
func metaPiece(raw []byte, i int) []byte {
	return raw[i*MetadataPieceSize : min((i+1)*MetadataPieceSize, len(raw))]
}

func newTestFetch(t *testing.T, raw []byte, peers ...string) *Fetch {
	t.Helper()
	f := NewFetch(sha1.Sum(raw))
	for _, p := range peers {
		if err := f.SetSize(p, len(raw)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestFetchTwoPeers(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "A", "B")
	now := time.Unix(1000, 0)

	asked := map[int]string{}
	for _, peer := range []string{"A", "B", "A", "B"} {
		if p, ok := f.Next(peer, now); ok {
			if prev, dup := asked[p]; dup {
				t.Fatalf("piece %d asked of %s and %s", p, prev, peer)
			}
			asked[p] = peer
		}
	}
	if len(asked) != 3 {
		t.Fatalf("asked %v, want all 3 pieces spread", asked)
	}
	if asked[0] == asked[1] {
		t.Fatalf("pieces 0 and 1 both from %s: not spread", asked[0])
	}
	if _, ok := f.Next("C", now); ok {
		t.Fatal("a piece offered though all are asked")
	}
	for p, peer := range asked {
		if f.Done() {
			t.Fatal("done early")
		}
		if err := f.Received(peer, p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Done() {
		t.Fatal("not done")
	}
	got, err := f.Info()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("fetched Info differs from ParseInfo(raw)")
	}
	if _, ok := f.Next("A", now); ok {
		t.Fatal("Next after done")
	}
}

func TestFetchMaxPerPeer(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "A")
	now := time.Unix(1000, 0)
	for i := range fetchMaxPerPeer {
		if p, ok := f.Next("A", now); !ok || p != i {
			t.Fatalf("Next = %d, %v", p, ok)
		}
	}
	if _, ok := f.Next("A", now); ok {
		t.Fatalf("more than %d outstanding", fetchMaxPerPeer)
	}
	if err := f.Received("A", 0, metaPiece(raw, 0)); err != nil {
		t.Fatal(err)
	}
	if p, ok := f.Next("A", now); !ok || p != 2 {
		t.Fatalf("after an answer Next = %d, %v; want 2", p, ok)
	}
}

// mustNext asks for the next piece for peer and fails unless it is want.
func mustNext(t *testing.T, f *Fetch, peer string, now time.Time, want int) {
	t.Helper()
	if p, ok := f.Next(peer, now); !ok || p != want {
		t.Fatalf("Next(%s) = %d, %v; want %d", peer, p, ok, want)
	}
}

// A failed assembly with two contributors blames nobody: the size is
// fetched again from one peer at a time. A success then exposes the liar
// by its earlier piece; the honest contributor is never named.
func TestFetchHashMismatch(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "good", "evil")
	now := time.Unix(1000, 0)
	bad := bytes.Clone(metaPiece(raw, 1))
	bad[100] ^= 0xff
	mustNext(t, f, "good", now, 0)
	mustNext(t, f, "evil", now, 1)
	mustNext(t, f, "good", now, 2)
	if err := f.Received("good", 0, metaPiece(raw, 0)); err != nil {
		t.Fatal(err)
	}
	if err := f.Received("evil", 1, bad); err != nil {
		t.Fatal(err)
	}
	err := f.Received("good", 2, metaPiece(raw, 2))
	if !errors.Is(err, ErrMetadataHash) {
		t.Fatalf("got %v, want ErrMetadataHash", err)
	}
	var he *MetadataHashError
	if !errors.As(err, &he) || !reflect.DeepEqual(he.Peers, []string{"evil", "good"}) || he.Culprit != "" || he.Size != len(raw) {
		t.Fatalf("two contributors: %#v", err)
	}
	if f.Done() {
		t.Fatal("done after a mismatch")
	}
	if _, err := f.Info(); err == nil {
		t.Fatal("Info after a mismatch")
	}
	// Everything starts over, from one peer: good takes the turn, and
	// evil is asked nothing until good gives it up.
	mustNext(t, f, "good", now, 0)
	if p, ok := f.Next("evil", now); ok {
		t.Fatalf("evil asked for %d during good's turn", p)
	}
	mustNext(t, f, "good", now, 1)
	for p := range 2 {
		if err := f.Received("good", p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	mustNext(t, f, "good", now, 2)
	if err := f.Received("good", 2, metaPiece(raw, 2)); err != nil {
		t.Fatal(err)
	}
	if info, err := f.Info(); err != nil || info.InfoHash != sha1.Sum(raw) {
		t.Fatalf("second fetch: %v", err)
	}
	if got := f.Liars(); !reflect.DeepEqual(got, []string{"evil"}) {
		t.Fatalf("Liars = %q, want evil alone", got)
	}
}

// One peer's turn: a liar that has every piece to itself is named as the
// culprit and no longer asked; the honest peer then completes.
func TestFetchExclusiveCulprit(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "evil", "good")
	now := time.Unix(1000, 0)
	junk := func(p int) []byte { return make([]byte, len(metaPiece(raw, p))) }
	mustNext(t, f, "evil", now, 0)
	mustNext(t, f, "good", now, 1)
	mustNext(t, f, "evil", now, 2)
	_ = f.Received("evil", 0, junk(0))
	_ = f.Received("good", 1, metaPiece(raw, 1))
	if err := f.Received("evil", 2, junk(2)); !errors.Is(err, ErrMetadataHash) {
		t.Fatalf("got %v", err)
	}
	mustNext(t, f, "evil", now, 0) // evil's turn
	f.Rejected("evil", 0, now)     // a refusal passes the turn...
	if _, ok := f.Next("evil", now); ok {
		t.Fatal("evil's turn again before good had one")
	}
	mustNext(t, f, "good", now, 0) // ...to good
	f.PeerGone("good")             // and going passes it back
	mustNext(t, f, "evil", now, 0)
	mustNext(t, f, "evil", now, 1)
	_ = f.Received("evil", 0, junk(0))
	_ = f.Received("evil", 1, junk(1))
	mustNext(t, f, "evil", now, 2)
	err := f.Received("evil", 2, junk(2))
	var he *MetadataHashError
	if !errors.As(err, &he) || he.Culprit != "evil" {
		t.Fatalf("one contributor: %v", err)
	}
	if _, ok := f.Next("evil", now); ok {
		t.Fatal("the culprit is asked again")
	}
	if err := f.SetSize("good", len(raw)); err != nil {
		t.Fatal(err)
	}
	for p := range 3 {
		mustNext(t, f, "good", now, p)
		if err := f.Received("good", p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Done() || f.Liars() != nil {
		t.Fatalf("done %v, liars %q", f.Done(), f.Liars())
	}
}

// An owner that sits on its requests loses its turn after fetchRetryAfter.
func TestFetchExclusiveStall(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "a", "b")
	now := time.Unix(1000, 0)
	mustNext(t, f, "a", now, 0)
	mustNext(t, f, "b", now, 1)
	mustNext(t, f, "a", now, 2)
	_ = f.Received("a", 0, make([]byte, MetadataPieceSize))
	_ = f.Received("b", 1, metaPiece(raw, 1))
	if err := f.Received("a", 2, metaPiece(raw, 2)); !errors.Is(err, ErrMetadataHash) {
		t.Fatal(err)
	}
	mustNext(t, f, "a", now, 0)
	if _, ok := f.Next("b", now.Add(fetchRetryAfter-time.Second)); ok {
		t.Fatal("b asked during a's turn")
	}
	mustNext(t, f, "b", now.Add(fetchRetryAfter), 0)
	if err := f.Received("a", 0, metaPiece(raw, 0)); err != nil || f.Done() {
		t.Fatal("the passed owner's late answer was taken")
	}
}

// Data nobody asked for is ignored: it cannot poison the assembly.
func TestFetchUnrequested(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "good", "evil")
	now := time.Unix(1000, 0)
	mustNext(t, f, "good", now, 0)
	for _, peer := range []string{"evil", "stranger"} {
		if err := f.Received(peer, 0, make([]byte, MetadataPieceSize)); err != nil {
			t.Fatal(err)
		}
	}
	mustNext(t, f, "good", now, 1)
	mustNext(t, f, "evil", now, 2)
	// A piece asked of evil still cannot be answered by good.
	if err := f.Received("good", 2, metaPiece(raw, 2)); err != nil {
		t.Fatal(err)
	}
	for p, peer := range []string{"good", "good", "evil"} {
		if err := f.Received(peer, p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Done() {
		t.Fatal("not done")
	}
}

func TestFetchSetSize(t *testing.T) {
	f := NewFetch(InfoHash{})
	for _, size := range []int{0, -1, MaxMetadataSize + 1} {
		if err := f.SetSize("p", size); !errors.Is(err, ErrMetadataSize) {
			t.Errorf("SetSize(%d) = %v", size, err)
		}
	}
	if f.Size() != 0 {
		t.Fatal("an implausible size was adopted")
	}
	if _, ok := f.Next("p", time.Now()); ok {
		t.Fatal("Next without a size")
	}
	if err := f.SetSize("a", 1000); err != nil {
		t.Fatal(err)
	}
	if err := f.SetSize("c", 1001); err != nil {
		t.Fatalf("a disagreeing size: %v", err)
	}
	if f.Size() != 1000 || f.NumPieces() != 1 {
		t.Fatalf("tie: size %d pieces %d, want the first claimed", f.Size(), f.NumPieces())
	}
	// Two connections from one IP are one vote; another IP outvotes it.
	for _, p := range []string{"127.0.0.2:1", "127.0.0.2:2", "127.0.0.3:1"} {
		if err := f.SetSize(p, 20000); err != nil {
			t.Fatal(err)
		}
	}
	if f.Size() != 20000 || f.NumPieces() != 2 {
		t.Fatalf("size %d pieces %d, want 20000 by two IPs", f.Size(), f.NumPieces())
	}
	f.PeerGone("127.0.0.3:1")
	if f.Size() != 1000 {
		t.Fatalf("size %d: 20000 has one IP left, as many as 1000, which came first", f.Size())
	}
}

// However many sizes are claimed, at most MaxCandidateSizes are fetched:
// the best claimed, so a crowd of liars with one size each cannot push out
// the size several peers agree on.
func TestFetchCandidateSizesBound(t *testing.T) {
	raw := bigInfo(t)
	f := NewFetch(sha1.Sum(raw))
	now := time.Unix(1000, 0)
	for i := range 3 * MaxCandidateSizes {
		if err := f.SetSize(fmt.Sprintf("127.0.1.%d:1", i), len(raw)+1+i); err != nil {
			t.Fatal(err)
		}
		if len(f.groups) > MaxCandidateSizes {
			t.Fatalf("%d sizes fetched, bound %d", len(f.groups), MaxCandidateSizes)
		}
	}
	for i := range 2 {
		if err := f.SetSize(fmt.Sprintf("127.0.2.%d:1", i), len(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.groups) > MaxCandidateSizes || f.groups[len(raw)] == nil {
		t.Fatalf("sizes %d, agreed size fetched: %v", len(f.groups), f.groups[len(raw)] != nil)
	}
	// A liar whose size lost its place is asked nothing, and its data is
	// ignored.
	if p, ok := f.Next(fmt.Sprintf("127.0.1.%d:1", 3*MaxCandidateSizes-1), now); ok {
		t.Fatalf("a peer of a dropped size asked for %d", p)
	}
	for p := range 3 {
		peer := fmt.Sprintf("127.0.2.%d:1", p%2)
		mustNext(t, f, peer, now, p)
		if err := f.Received(peer, p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Done() {
		t.Fatal("not done")
	}
}

func TestFetchReceivedRefused(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "A")
	now := time.Unix(1000, 0)
	mustNext(t, f, "A", now, 0)
	mustNext(t, f, "A", now, 1)
	for _, tt := range []struct {
		piece int
		data  []byte
	}{
		{0, metaPiece(raw, 0)[:100]},
		{0, append(bytes.Clone(metaPiece(raw, 0)), 0)},
		{1, metaPiece(raw, 2)},
	} {
		if err := f.Received("A", tt.piece, tt.data); err == nil {
			t.Errorf("Received(piece %d, %d bytes) accepted", tt.piece, len(tt.data))
		}
	}
	// Pieces out of range or not asked: ignored.
	for _, piece := range []int{-1, 2, 3} {
		if err := f.Received("A", piece, metaPiece(raw, 2)); err != nil {
			t.Errorf("Received(piece %d): %v", piece, err)
		}
	}
	// No state change: pieces 0 and 1 are still asked of A, 2 still wanted.
	if err := f.SetSize("B", len(raw)); err != nil {
		t.Fatal(err)
	}
	mustNext(t, f, "B", now, 2)
	if _, ok := f.Next("B", now); ok {
		t.Fatal("a piece asked twice")
	}
	if NewFetch(InfoHash{}).Received("A", 0, []byte("x")) != nil {
		t.Fatal("Received before any size")
	}
}

func TestFetchRequeue(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "A", "B", "C", "D", "E")
	now := time.Unix(1000, 0)
	f.Next("A", now) // 0
	f.Next("A", now) // 1
	f.Next("B", now) // 2
	if _, ok := f.Next("B", now); ok {
		t.Fatal("all pieces are asked")
	}

	// A rejects piece 0: B may have it at once, A not again.
	f.Rejected("A", 0, now)
	if p, ok := f.Next("A", now); ok {
		t.Fatalf("A offered piece %d it rejected, or one asked of B", p)
	}
	mustNext(t, f, "B", now, 0)

	// A goes: its piece 1 is free for B... who has 2 outstanding.
	f.PeerGone("A")
	if _, ok := f.Next("B", now); ok {
		t.Fatal("B over its limit")
	}
	mustNext(t, f, "C", now, 1)

	// Nobody answers: after fetchRetryAfter everything is up for grabs.
	later := now.Add(fetchRetryAfter)
	if _, ok := f.Next("D", later.Add(-time.Second)); ok {
		t.Fatal("retry before the timeout")
	}
	got := map[int]bool{}
	for _, peer := range []string{"D", "D", "E"} {
		p, ok := f.Next(peer, later)
		if !ok {
			t.Fatalf("no retry for %s", peer)
		}
		got[p] = true
	}
	if len(got) != 3 {
		t.Fatalf("retries %v, want all 3 pieces", got)
	}
	// A late answer from whoever was first asked still counts.
	for p, peer := range []string{"B", "C", "B"} {
		if err := f.Received(peer, p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Done() {
		t.Fatal("not done")
	}
}

func TestFetchInvalidInfo(t *testing.T) {
	// Hashes right but is not a valid info dict: the torrent itself is bad.
	raw := []byte("d4:name2:..e")
	f := newTestFetch(t, raw, "A")
	mustNext(t, f, "A", time.Now(), 0)
	if err := f.Received("A", 0, raw); !errors.Is(err, ErrInvalidInfo) {
		t.Fatalf("got %v", err)
	}
	if !f.Done() {
		t.Fatal("not done")
	}
	if _, err := f.Info(); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("Info: %v", err)
	}
}

func TestServeMetadata(t *testing.T) {
	raw := bigInfo(t)
	var assembled []byte
	for p := range 3 {
		m, data, err := ParseMetadataMsg(ServeMetadata(raw, p))
		if err != nil {
			t.Fatal(err)
		}
		if m != (MetadataMsg{Type: MetadataData, Piece: p, TotalSize: len(raw)}) {
			t.Fatalf("piece %d: %+v", p, m)
		}
		if !bytes.Equal(data, metaPiece(raw, p)) {
			t.Fatalf("piece %d: wrong data", p)
		}
		assembled = append(assembled, data...)
	}
	if !bytes.Equal(assembled, raw) {
		t.Fatal("pieces do not assemble to raw")
	}
	for _, tt := range []struct {
		raw   []byte
		piece int
	}{{raw, 3}, {raw, 1 << 20}, {raw, -1}, {nil, 0}} {
		b := ServeMetadata(tt.raw, tt.piece)
		if tt.piece >= 0 {
			m, data, err := ParseMetadataMsg(b)
			if err != nil || m != (MetadataMsg{Type: MetadataReject, Piece: tt.piece}) || data != nil {
				t.Errorf("ServeMetadata(%d) = %+v, %q, %v", tt.piece, m, data, err)
			}
		} else if !bytes.HasPrefix(b, []byte("d8:msg_typei2e")) {
			t.Errorf("ServeMetadata(%d) = %q", tt.piece, b)
		}
	}
}

// The examples of BEP 9, "Extension for Peers to Send Metadata Files".
func TestMetadataMsgBEP9Examples(t *testing.T) {
	data := bytes.Repeat([]byte("x"), MetadataPieceSize)
	for _, tt := range []struct {
		wire string
		msg  MetadataMsg
		data []byte
	}{
		{"d8:msg_typei0e5:piecei0ee", MetadataMsg{Type: MetadataRequest, Piece: 0}, nil},
		{"d8:msg_typei1e5:piecei0e10:total_sizei34256ee" + string(data),
			MetadataMsg{Type: MetadataData, Piece: 0, TotalSize: 34256}, data},
		{"d8:msg_typei2e5:piecei0ee", MetadataMsg{Type: MetadataReject, Piece: 0}, nil},
	} {
		m, d, err := ParseMetadataMsg([]byte(tt.wire))
		if err != nil {
			t.Fatalf("%.40q: %v", tt.wire, err)
		}
		if m != tt.msg || !bytes.Equal(d, tt.data) {
			t.Fatalf("%.40q: got %+v and %d bytes", tt.wire, m, len(d))
		}
		b, err := tt.msg.Append(nil, tt.data)
		if err != nil || string(b) != tt.wire {
			t.Fatalf("Append = %.60q, %v; want %.60q", b, err, tt.wire)
		}
	}
}

func TestParseMetadataMsgErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"x",
		"le",
		"d8:msg_typei3e5:piecei0ee",     // unknown type
		"d8:msg_typei0e5:piecei-1ee",    // negative piece
		"d8:msg_typei0e5:piecei0eeDATA", // data on a request
		"d8:msg_typei2e5:piecei0eeDATA", // data on a reject
		"d8:msg_typei1e5:piecei0e10:total_sizei10ee",   // data message without data
		"d8:msg_typei1e5:piecei0eeDATA",                // data without total_size
		"d8:msg_typei1e5:piecei0e10:total_sizei-1eeXX", // negative total_size
		"d5:piecei0ee",                                              // no msg_type
		"d8:msg_typei0ee",                                           // no piece
		"d8:msg_typei0e5:piece1:0e",                                 // piece not an int
		"d8:msg_typei0e5:piecei99999999999999999999ee",              // overflow
		"d8:msg_typei0e5:piecei0e",                                  // truncated
		"d8:msg_typei0e5:piecei0e1:x" + strings.Repeat("l", 100000), // deep
	} {
		if _, _, err := ParseMetadataMsg([]byte(s)); !errors.Is(err, ErrMetadataMsg) {
			t.Errorf("ParseMetadataMsg(%.50q) = %v", s, err)
		}
	}
	long := append([]byte("d8:msg_typei1e5:piecei0e10:total_sizei99999ee"), make([]byte, MetadataPieceSize+1)...)
	if _, _, err := ParseMetadataMsg(long); err == nil {
		t.Error("data longer than a metadata piece accepted")
	}
	if _, err := (MetadataMsg{Type: MetadataRequest}).Append(nil, []byte("x")); err == nil {
		t.Error("Append: data on a request accepted")
	}
	if _, err := (MetadataMsg{Type: 7}).Append(nil, nil); err == nil {
		t.Error("Append: unknown type accepted")
	}
}
