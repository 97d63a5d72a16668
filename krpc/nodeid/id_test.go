package nodeid

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	hexID := "0123456789abcdef0123456789abcdef01234567"
	id, err := Parse(hexID)
	if err != nil || id.String() != hexID {
		t.Fatalf("Parse(%q) = %v, %v", hexID, id, err)
	}
	if up, err := Parse(strings.ToUpper(hexID)); err != nil || up != id {
		t.Errorf("upper case: %v, %v", up, err)
	}
	for _, s := range []string{"", hexID[:39], hexID + "0", "g" + hexID[1:]} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func TestFromBytes(t *testing.T) {
	b := []byte("abcdefghijklmnopqrst")
	id, err := FromBytes(b)
	if err != nil || string(id[:]) != string(b) {
		t.Fatalf("FromBytes = %v, %v", id, err)
	}
	for _, n := range []int{0, Len - 1, Len + 1} {
		if _, err := FromBytes(make([]byte, n)); err == nil {
			t.Errorf("FromBytes(%d bytes) accepted", n)
		}
	}
}

func TestIsZero(t *testing.T) {
	if !(ID{}).IsZero() || (ID{Len - 1: 1}).IsZero() {
		t.Error("IsZero is not 'all bytes zero'")
	}
}

// The wire must never pad or truncate an ID: anything but one 20-byte
// string is an error.
func TestBencode(t *testing.T) {
	id := ID{0: 1, Len - 1: 0xff}
	b, err := id.MarshalBencode()
	if err != nil || string(b) != "20:"+string(id[:]) {
		t.Fatalf("MarshalBencode = %q, %v", b, err)
	}
	var got ID
	if err := got.UnmarshalBencode(b); err != nil || got != id {
		t.Fatalf("UnmarshalBencode = %v, %v", got, err)
	}
	for _, in := range []string{
		"19:" + strings.Repeat("a", 19),
		"21:" + strings.Repeat("a", 21),
		"20:" + strings.Repeat("a", 20) + "x",
		"i5e",
		"99999999999:" + strings.Repeat("a", 20),
		"",
	} {
		if err := got.UnmarshalBencode([]byte(in)); err == nil {
			t.Errorf("UnmarshalBencode(%q) accepted", in)
		}
	}
}

// Cmp, Less and Distance agree with the XOR metric read as a 160-bit
// big-endian integer, compared bit by bit.
func TestOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	bitCmp := func(a, b ID) int {
		for i := 0; i < Len*8; i++ {
			x, y := a[i/8]>>(7-i%8)&1, b[i/8]>>(7-i%8)&1
			if x != y {
				return int(x) - int(y)
			}
		}
		return 0
	}
	for range 1000 {
		a, b, target := Random(r), Random(r), Random(r)
		if r.IntN(4) == 0 {
			b = a
			b[r.IntN(Len)] ^= 1 << r.IntN(8)
		}
		if got, want := a.Cmp(b), bitCmp(a, b); got != want {
			t.Fatalf("%v.Cmp(%v) = %d, want %d", a, b, got, want)
		}
		if a.Less(b) != (bitCmp(a, b) < 0) {
			t.Fatalf("%v.Less(%v) disagrees with Cmp", a, b)
		}
		if d := a.Distance(b); d != b.Distance(a) || a.Distance(a) != (ID{}) || d.Distance(b) != a {
			t.Fatalf("Distance(%v, %v) is not XOR", a, b)
		}
		da, db := a.Distance(target), b.Distance(target)
		if da.Cmp(db) != bitCmp(da, db) {
			t.Fatalf("distance order wrong for %v, %v to %v", a, b, target)
		}
	}
}
