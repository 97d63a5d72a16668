package wire

import "testing"

func TestBits(t *testing.T) {
	b := NewBits(10)
	if len(b) != 2 {
		t.Fatalf("NewBits(10) has %d bytes, want 2", len(b))
	}
	b.Set(0)
	b.Set(9)
	if b[0] != 0x80 || b[1] != 0x40 {
		t.Fatalf("bit order: got % x, want 80 40 (piece 0 is the high bit)", []byte(b))
	}
	for i := -1; i < 20; i++ {
		want := i == 0 || i == 9
		if got := b.Has(i); got != want {
			t.Errorf("Has(%d) = %v, want %v", i, got, want)
		}
	}
	// Out of range is ignored rather than panicking: indexes come from peers.
	b.Set(-1)
	b.Set(16)
	b.Set(1 << 40)
	if b[0] != 0x80 || b[1] != 0x40 {
		t.Fatalf("out-of-range Set changed bits: % x", []byte(b))
	}
	if !ValidBitfield(b, 10) {
		t.Fatal("bitfield we built is invalid")
	}
	if len(NewBits(-5)) != 0 || len(NewBits(0)) != 0 || len(NewBits(8)) != 1 || len(NewBits(9)) != 2 {
		t.Fatal("NewBits length wrong")
	}
}

func TestValidBitfield(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		n    int
		want bool
	}{
		{"exact bytes", []byte{0xff}, 8, true},
		{"spare clear", []byte{0xff, 0xc0}, 10, true},
		{"spare set", []byte{0xff, 0xe0}, 10, false},
		{"lowest spare set", []byte{0x00, 0x01}, 10, false},
		{"too short", []byte{0xff}, 9, false},
		{"too long", []byte{0xff, 0x00}, 8, false},
		{"empty for zero", nil, 0, true},
		{"non-empty for zero", []byte{0}, 0, false},
		{"negative n", nil, -1, false},
		{"one piece", []byte{0x80}, 1, true},
		{"one piece spare", []byte{0x81}, 1, false},
	}
	for _, tt := range tests {
		if got := ValidBitfield(tt.b, tt.n); got != tt.want {
			t.Errorf("%s: ValidBitfield(% x, %d) = %v, want %v", tt.name, tt.b, tt.n, got, tt.want)
		}
	}
}
