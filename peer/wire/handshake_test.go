package wire

import (
	"bytes"
	"errors"
	"testing"
)

func testHandshake() Handshake {
	h := Handshake{Reserved: DefaultReserved()}
	for i := range h.InfoHash {
		h.InfoHash[i] = byte(i + 1)
	}
	copy(h.PeerID[:], "-GO0001-abcdefghijkl")
	return h
}

func TestHandshakeGolden(t *testing.T) {
	const want = "13 " +
		"42 69 74 54 6f 72 72 65 6e 74 20 70 72 6f 74 6f 63 6f 6c " + // "BitTorrent protocol"
		"00 00 00 00 00 10 00 05 " + // reserved: BEP 10, BEP 6 and BEP 5 bits
		"01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 " +
		"2d 47 4f 30 30 30 31 2d 61 62 63 64 65 66 67 68 69 6a 6b 6c" // "-GO0001-abcdefghijkl"
	h := testHandshake()
	got := h.Append(nil)
	if !bytes.Equal(got, unhex(t, want)) {
		t.Fatalf("Append:\n got %s\nwant %s", spacedHex(got), want)
	}
	if len(got) != HandshakeLen {
		t.Fatalf("len %d, want %d", len(got), HandshakeLen)
	}
	if got[25] != 0x10 || got[27] != 0x05 {
		t.Fatalf("reserved bytes on the wire: [25]=%#x [27]=%#x, want 0x10 0x05", got[25], got[27])
	}
	parsed, err := ParseHandshake(got)
	if err != nil {
		t.Fatal(err)
	}
	if parsed != h {
		t.Fatalf("round trip: got %+v, want %+v", parsed, h)
	}
	if !parsed.Reserved.Extensions() || !parsed.Reserved.DHT() {
		t.Fatal("default reserved bits not reported")
	}
}

func TestReserved(t *testing.T) {
	var r Reserved
	if r.Extensions() || r.DHT() || r.Fast() {
		t.Fatal("zero Reserved reports features")
	}
	d := DefaultReserved()
	if d[7]&0x04 == 0 || !d.Fast() {
		t.Fatal("fast extension bit (reserved[7] & 0x04) not set")
	}
	if off := d.WithFast(false); off.Fast() || off[7] != 0x01 || !off.DHT() || !off.Extensions() {
		t.Fatalf("WithFast(false) = % x", off)
	}
	if on := (Reserved{}).WithFast(true); on != (Reserved{7: 0x04}) {
		t.Fatalf("WithFast(true) = % x", on)
	}
	d[5] = 0xff &^ 0x10
	d[7] = 0xff &^ 0x05
	if d.Extensions() || d.DHT() || d.Fast() {
		t.Fatal("feature bits read from the wrong positions")
	}
}

func TestParseHandshakeBad(t *testing.T) {
	good := testHandshake().Append(nil)
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short", good[:HandshakeLen-1]},
		{"long", append(append([]byte(nil), good...), 0)},
		{"pstrlen 18", mutate(func(b []byte) []byte { b[0] = 18; return b })},
		{"pstrlen 20", mutate(func(b []byte) []byte { b[0] = 20; return b })},
		{"pstr case", mutate(func(b []byte) []byte { b[1] = 'b'; return b })},
		{"pstr last byte", mutate(func(b []byte) []byte { b[19] = 'L'; return b })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHandshake(tt.in)
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("got %+v, %v; want ErrHandshake", h, err)
			}
			if h != (Handshake{}) {
				t.Fatalf("partial handshake returned with error: %+v", h)
			}
		})
	}
}
