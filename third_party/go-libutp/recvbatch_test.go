package utp

import (
	"bytes"
	"net"
	"testing"
)

// A coalesced message splits into datagrams of the segment size, the
// last shorter, in order; sizes that cannot be the kernel's (zero,
// negative, at least the message) leave it one datagram; a size that
// would make more than maxGROSegments datagrams drops it.
func TestAppendSegments(t *testing.T) {
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	msg := make([]byte, 10300)
	for i := range msg {
		msg[i] = byte(i / 1000)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		seg  int
		want []int // lengths; nil: dropped
	}{
		{"split", msg, 1000, []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 300}},
		{"exact", msg[:3000], 1000, []int{1000, 1000, 1000}},
		{"none", msg, 0, []int{10300}},
		{"negative", msg, -5, []int{10300}},
		{"larger", msg, 20000, []int{10300}},
		{"equal", msg, 10300, []int{10300}},
		{"empty", nil, 1000, []int{0}},
		{"at bound", make([]byte, maxGROSegments), 1, make([]int, maxGROSegments)},
		{"tiny", msg, 1, nil},
		{"just over", make([]byte, maxGROSegments*10+1), 10, nil},
		{"largest", make([]byte, recvBufferSize), 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "at bound" {
				for i := range tc.want {
					tc.want[i] = 1
				}
			}
			prev := []received{{[]byte("x"), addr}}
			ds, ok := appendSegments(prev, tc.b, tc.seg, addr)
			if tc.want == nil {
				if ok || len(ds) != 1 {
					t.Fatalf("kept: ok %v, %d datagrams", ok, len(ds))
				}
				return
			}
			if !ok {
				t.Fatal("dropped")
			}
			ds = ds[1:]
			if len(ds) != len(tc.want) {
				t.Fatalf("%d datagrams, want %d", len(ds), len(tc.want))
			}
			var joined []byte
			for i, d := range ds {
				if len(d.b) != tc.want[i] || d.addr != addr {
					t.Fatalf("datagram %d: %d bytes from %v, want %d from %v", i, len(d.b), d.addr, tc.want[i], addr)
				}
				if cap(d.b) != len(d.b) && i < len(ds)-1 {
					t.Fatalf("datagram %d can be appended into the next", i)
				}
				joined = append(joined, d.b...)
			}
			if !bytes.Equal(joined, tc.b) {
				t.Fatal("datagrams are not the message in order")
			}
		})
	}
}
