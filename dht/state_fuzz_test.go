package dht

import (
	"net/netip"
	"testing"

	"node/routing"
)

// The state decoder (a state file, or Config.WarmState) takes any bytes:
// an error or a state, never a panic; what it returns encodes again.
func FuzzDecodeState(f *testing.F) {
	good, err := EncodeState(routing.ID{1}, []routing.Contact{
		{ID: routing.ID{2}, Addr: netip.MustParseAddrPort("10.0.0.1:6881")},
		{ID: routing.ID{3}, Addr: netip.MustParseAddrPort("[2001:db8::1]:6881")},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("de"))
	f.Add([]byte("d2:id20:aaaaaaaaaaaaaaaaaaaa5:nodes3:abce"))
	f.Add([]byte("d2:id3:abce"))
	f.Add([]byte("li1ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		if _, err := EncodeState(st.ID, st.contacts()); err != nil {
			t.Fatalf("a decoded state does not encode: %v", err)
		}
	})
}
