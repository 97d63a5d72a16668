package wire

import "testing"

func BenchmarkParsePiece(b *testing.B) {
	m := Message{Type: Piece, Index: 7, Begin: 3 * BlockSize, Block: make([]byte, BlockSize)}
	payload := m.Append(nil)[4:]
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequest(b *testing.B) {
	m := Message{Type: Request, Index: 7, Begin: 3 * BlockSize, Length: BlockSize}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.Append(buf[:0])
	}
}

func TestParsePieceZeroAlloc(t *testing.T) {
	m := Message{Type: Piece, Block: make([]byte, BlockSize)}
	payload := m.Append(nil)[4:]
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseMessage(payload); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ParseMessage(piece) allocates %v times", n)
	}
}
