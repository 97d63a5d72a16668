package storage

import (
	"testing"
)

func benchInfo(b *testing.B) (*Storage, []byte, int) {
	const pieceLen = 1 << 20
	const pieces = 16
	info, content := buildInfo(b, 3, "bench", pieceLen, []fileSpec{
		{path: []string{"bench", "a"}, length: pieces * pieceLen / 3},
		{path: []string{"bench", "b"}, length: pieces*pieceLen - pieces*pieceLen/3},
	})
	s := mustOpen(b, b.TempDir(), info)
	b.Cleanup(func() { s.Close() })
	return s, content, pieces
}

func BenchmarkWriteBlock(b *testing.B) {
	s, content, _ := benchInfo(b)
	pieceLen := s.info.PieceLength
	b.SetBytes(blockSize)
	b.ResetTimer()
	off := int64(0)
	for b.Loop() {
		if err := s.WriteBlock(int(off/pieceLen), off%pieceLen, content[off:off+blockSize]); err != nil {
			b.Fatal(err)
		}
		off = (off + blockSize) % int64(len(content))
	}
}

func BenchmarkVerifyPiece(b *testing.B) {
	s, content, pieces := benchInfo(b)
	if _, err := s.WriteAt(content, 0); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(s.info.PieceLength)
	b.ResetTimer()
	p := 0
	for b.Loop() {
		ok, err := s.VerifyPiece(p)
		if !ok || err != nil {
			b.Fatalf("VerifyPiece(%d) = %v, %v", p, ok, err)
		}
		p = (p + 1) % pieces
	}
}
