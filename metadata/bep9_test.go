package metadata

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
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

func TestFetchHashMismatch(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "good", "evil")
	now := time.Unix(1000, 0)
	bad := bytes.Clone(metaPiece(raw, 1))
	bad[100] ^= 0xff
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
	if !errors.As(err, &he) || !reflect.DeepEqual(he.Peers, []string{"evil", "good"}) {
		t.Fatalf("contributors: %v", err)
	}
	if f.Done() {
		t.Fatal("done after a mismatch")
	}
	if _, err := f.Info(); err == nil {
		t.Fatal("Info after a mismatch")
	}
	// Everything starts over: all pieces are wanted again.
	f.PeerGone("evil")
	for i := range 3 {
		p, ok := f.Next("good", now.Add(time.Duration(i)*fetchRetryAfter))
		if !ok || p != i {
			t.Fatalf("after reset Next = %d, %v; want %d", p, ok, i)
		}
		if err := f.Received("good", p, metaPiece(raw, p)); err != nil {
			t.Fatal(err)
		}
	}
	if info, err := f.Info(); err != nil || info.InfoHash != sha1.Sum(raw) {
		t.Fatalf("second fetch: %v", err)
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
	if err := f.SetSize("b", 1000); err != nil {
		t.Fatal(err)
	}
	if err := f.SetSize("c", 1001); !errors.Is(err, ErrMetadataSize) {
		t.Fatalf("mismatched size: %v", err)
	}
	if f.Size() != 1000 || f.NumPieces() != 1 {
		t.Fatalf("size %d pieces %d", f.Size(), f.NumPieces())
	}
}

func TestFetchReceivedRefused(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "A")
	now := time.Unix(1000, 0)
	if p, ok := f.Next("A", now); !ok || p != 0 {
		t.Fatal("Next")
	}
	for _, tt := range []struct {
		piece int
		data  []byte
	}{
		{-1, metaPiece(raw, 0)},
		{3, metaPiece(raw, 2)},
		{0, metaPiece(raw, 0)[:100]},
		{0, append(bytes.Clone(metaPiece(raw, 0)), 0)},
		{2, metaPiece(raw, 1)}, // the last piece is short
		{1, metaPiece(raw, 2)},
	} {
		if err := f.Received("A", tt.piece, tt.data); err == nil {
			t.Errorf("Received(piece %d, %d bytes) accepted", tt.piece, len(tt.data))
		}
	}
	// No state change: piece 0 is still asked of A, 1 and 2 still wanted.
	if p, ok := f.Next("A", now); !ok || p != 1 {
		t.Fatalf("Next = %d, %v; want 1", p, ok)
	}
	if p, ok := f.Next("B", now); !ok || p != 2 {
		t.Fatalf("Next = %d, %v; want 2", p, ok)
	}
	if NewFetch(InfoHash{}).Received("A", 0, []byte("x")) == nil {
		t.Fatal("Received before any size")
	}
}

func TestFetchRequeue(t *testing.T) {
	raw := bigInfo(t)
	f := newTestFetch(t, raw, "A", "B")
	now := time.Unix(1000, 0)
	f.Next("A", now) // 0
	f.Next("A", now) // 1
	f.Next("B", now) // 2
	if _, ok := f.Next("B", now); ok {
		t.Fatal("all pieces are asked")
	}

	// A rejects piece 0: B may have it at once, A not again.
	f.Rejected("A", 0)
	if p, ok := f.Next("A", now); ok {
		t.Fatalf("A offered piece %d it rejected, or one asked of B", p)
	}
	if p, ok := f.Next("B", now); !ok || p != 0 {
		t.Fatalf("after reject Next(B) = %d, %v; want 0", p, ok)
	}

	// A goes: its piece 1 is free for B... who has 2 outstanding.
	f.PeerGone("A")
	if _, ok := f.Next("B", now); ok {
		t.Fatal("B over its limit")
	}
	if p, ok := f.Next("C", now); !ok || p != 1 {
		t.Fatalf("after PeerGone Next(C) = %d, %v; want 1", p, ok)
	}

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
	for p := range 3 {
		if err := f.Received("B", p, metaPiece(raw, p)); err != nil {
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
