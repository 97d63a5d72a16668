package wire

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

// A message with every list, as libtorrent writes it (all six keys, in
// bencode's sorted order), both ways.
func TestPexGolden(t *testing.T) {
	p := Pex{
		Added: []PexPeer{
			{Addr: netip.MustParseAddrPort("1.2.3.4:6881"), Flags: PexSeed | PexReachable},
			{Addr: netip.MustParseAddrPort("[2001:db8::1]:258"), Flags: PexUTP},
		},
		Dropped: []netip.AddrPort{
			netip.MustParseAddrPort("5.6.7.8:1"),
			netip.MustParseAddrPort("[2001:db8::2]:2"),
		},
	}
	want := "d5:added6:\x01\x02\x03\x04\x1a\xe1" +
		"7:added.f1:\x12" +
		"6:added618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x02" +
		"8:added6.f1:\x04" +
		"7:dropped6:\x05\x06\x07\x08\x00\x01" +
		"8:dropped618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02e"
	got, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("Append:\n got %q\nwant %q", got, want)
	}
	back, err := ParsePex(got)
	if err != nil {
		t.Fatal(err)
	}
	if !pexEqual(back, p) {
		t.Fatalf("ParsePex: %+v, want %+v", back, p)
	}
	empty, err := Pex{}.Append(nil)
	if err != nil || string(empty) != "d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e" {
		t.Fatalf("empty: %q, %v", empty, err)
	}
}

// Missing keys mean empty lists, a missing flags string means no flags,
// unknown keys are ignored: what older clients and later BEPs send.
func TestParsePexLenient(t *testing.T) {
	p, err := ParsePex([]byte("d5:added6:\x7f\x00\x00\x01\x00\x505:x.new3:abce"))
	if err != nil {
		t.Fatal(err)
	}
	want := []PexPeer{{Addr: netip.MustParseAddrPort("127.0.0.1:80")}}
	if !slices.Equal(p.Added, want) || len(p.Dropped) != 0 {
		t.Fatalf("got %+v", p)
	}
	if _, err := ParsePex([]byte("de")); err != nil {
		t.Fatalf("empty dictionary: %v", err)
	}
}

// Anything else is refused with ErrPex.
func TestParsePexStrict(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"list":           "le",
		"int":            "i1e",
		"truncated":      "d5:added6:\x01\x02",
		"trailing":       "dee",
		"added 5 bytes":  "d5:added5:abcdee",
		"added6 6 bytes": "d6:added66:abcdefe",
		"dropped 7":      "d7:dropped7:abcdefge",
		"dropped6 17":    "d8:dropped617:" + strings.Repeat("x", 17) + "e",
		"flags short":    "d5:added12:" + strings.Repeat("x", 12) + "7:added.f1:\x00e",
		"flags long":     "d5:added6:abcdef7:added.f2:\x00\x00e",
		"flags6 long":    "d6:added618:" + strings.Repeat("x", 18) + "8:added6.f2:\x00\x00e",
		"added is int":   "d5:addedi1ee",
		"added is list":  "d5:addedlee",
		"huge string":    "d5:added999999999:e",
	} {
		if _, err := ParsePex([]byte(in)); !errors.Is(err, ErrPex) {
			t.Errorf("%s: %v, want ErrPex", name, err)
		}
	}
	if _, err := (Pex{Added: []PexPeer{{}}}).Append(nil); !errors.Is(err, ErrPex) {
		t.Errorf("Append of an invalid address: %v", err)
	}
}

// MaxPexPeers added, or dropped, contacts are read and written; one more
// is refused both ways, whatever the mix of families.
func TestMaxPexPeersBound(t *testing.T) {
	mk := func(n4, n6 int) []netip.AddrPort {
		var out []netip.AddrPort
		for i := range n4 {
			out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1))
		}
		for i := range n6 {
			out = append(out, netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 1, 14: byte(i >> 8), 15: byte(i)}), 1))
		}
		return out
	}
	added := func(as []netip.AddrPort) []PexPeer {
		var out []PexPeer
		for _, a := range as {
			out = append(out, PexPeer{Addr: a})
		}
		return out
	}
	for _, n := range []int{MaxPexPeers, MaxPexPeers + 1} {
		for _, p := range []Pex{
			{Added: added(mk(n-n/3, n/3))},
			{Dropped: mk(n/2, n-n/2)},
		} {
			// Append refuses the over-bound message, so it is built
			// from two halves that each pass.
			half := func(lo, hi int) Pex {
				if p.Added != nil {
					return Pex{Added: p.Added[lo:hi]}
				}
				return Pex{Dropped: p.Dropped[lo:hi]}
			}
			l := max(len(p.Added), len(p.Dropped))
			a, _ := half(0, l/2).Append(nil)
			b, _ := half(l/2, l).Append(nil)
			wire := mergePex(t, a, b)
			_, perr := ParsePex(wire)
			_, aerr := p.Append(nil)
			if n <= MaxPexPeers {
				if perr != nil || aerr != nil {
					t.Errorf("%d contacts: parse %v, append %v", n, perr, aerr)
				}
			} else if !errors.Is(perr, ErrPex) || !errors.Is(aerr, ErrPex) {
				t.Errorf("%d contacts: parse %v, append %v; bound is %d", n, perr, aerr, MaxPexPeers)
			}
		}
	}
}

// mergePex joins the lists of two encoded messages into one.
func mergePex(t *testing.T, a, b []byte) []byte {
	t.Helper()
	var wa, wb pexWire
	if err := decodeExact(a, &wa); err != nil {
		t.Fatal(err)
	}
	if err := decodeExact(b, &wb); err != nil {
		t.Fatal(err)
	}
	w := pexWire{
		Added: wa.Added + wb.Added, AddedF: wa.AddedF + wb.AddedF,
		Added6: wa.Added6 + wb.Added6, Added6F: wa.Added6F + wb.Added6F,
		Dropped: wa.Dropped + wb.Dropped, Dropped6: wa.Dropped6 + wb.Dropped6,
	}
	out, err := bencode.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pexEqual(a, b Pex) bool {
	return slices.Equal(a.Added, b.Added) && slices.Equal(a.Dropped, b.Dropped)
}
