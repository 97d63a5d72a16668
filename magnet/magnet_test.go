package magnet

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

const (
	hashHex    = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	hashBase32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK" // hashHex in base32
	hashV2Hex  = "d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb"
)

func mustHex20(t testing.TB, s string) (h [20]byte) {
	t.Helper()
	if n, err := hex.Decode(h[:], []byte(s)); err != nil || n != 20 {
		t.Fatalf("bad test hash %q", s)
	}
	return h
}

func mustHex32(t testing.TB, s string) (h [32]byte) {
	t.Helper()
	if n, err := hex.Decode(h[:], []byte(s)); err != nil || n != 32 {
		t.Fatalf("bad test hash %q", s)
	}
	return h
}

// validLinks is shared with the fuzz test as seeds.
var validLinks = []string{
	"magnet:?xt=urn:btih:" + hashHex,
	"MAGNET:?xt=urn:btih:" + strings.ToUpper(hashHex),
	"magnet:?xt=urn:btih:" + hashBase32,
	"magnet:?xt=urn:btih:" + strings.ToLower(hashBase32),
	"magnet:?xt=urn:btmh:1220" + hashV2Hex,
	"magnet:?xt=urn:btih:" + hashHex + "&xt=urn:btmh:1220" + hashV2Hex + "&dn=hybrid",
	"magnet:?xt=urn:btih:" + hashHex + "&dn=Big+Buck%20Bunny+%E2%9C%93+%C3%A9t%C3%A9",
	"magnet:?xt=urn:btih:" + hashHex + "&tr=udp%3A%2F%2Ftracker.example%3A1337%2Fannounce&tr=http://t2.example/announce?a=b",
	"magnet:?xt=urn:btih:" + hashHex + "&x.pe=192.0.2.1:6881&x.pe=%5B2001%3Adb8%3A%3A1%5D%3A51413&x.pe=peer.example:1",
	"magnet:?xt=urn:btih:" + hashHex + "&ws=https%3A%2F%2Fseed.example%2Ffile&so=0,2,4-6&xl=1234567890",
	"magnet:?xt.1=urn:btih:" + hashHex + "&tr.1=udp://a.example:1&tr.2=udp://b.example:2&dn.1=numbered",
	"magnet:?xt=urn:sha1:ABCD&xt=urn:btih:" + hashHex + "&as=whatever&kt=a+b&foo=%zz&&xt=urn:btih:" + hashBase32,
}

func TestParseValid(t *testing.T) {
	v1 := mustHex20(t, hashHex)
	v2 := mustHex32(t, hashV2Hex)
	tests := []struct {
		name string
		uri  string
		want Link
	}{
		{"hex", validLinks[0], Link{InfoHash: v1, HasV1: true}},
		{"uppercase hex and scheme", validLinks[1], Link{InfoHash: v1, HasV1: true}},
		{"base32", validLinks[2], Link{InfoHash: v1, HasV1: true}},
		{"lowercase base32", validLinks[3], Link{InfoHash: v1, HasV1: true}},
		{"btmh only", validLinks[4], Link{InfoHashV2: v2, HasV2: true}},
		{"hybrid", validLinks[5], Link{InfoHash: v1, HasV1: true, InfoHashV2: v2, HasV2: true, Name: "hybrid"}},
		{"dn with spaces and unicode", validLinks[6], Link{InfoHash: v1, HasV1: true, Name: "Big Buck Bunny ✓ été"}},
		{"multiple tr", validLinks[7], Link{InfoHash: v1, HasV1: true, Trackers: []string{
			"udp://tracker.example:1337/announce", "http://t2.example/announce?a=b",
		}}},
		{"x.pe IPv4, IPv6 and name", validLinks[8], Link{InfoHash: v1, HasV1: true, Peers: []string{
			"192.0.2.1:6881", "[2001:db8::1]:51413", "peer.example:1",
		}}},
		{"ws so xl", validLinks[9], Link{InfoHash: v1, HasV1: true,
			WebSeeds: []string{"https://seed.example/file"}, Select: "0,2,4-6", Length: 1234567890}},
		{"numbered params", validLinks[10], Link{InfoHash: v1, HasV1: true, Name: "numbered",
			Trackers: []string{"udp://a.example:1", "udp://b.example:2"}}},
		{"unknown params and xt namespaces ignored, same hash twice", validLinks[11], Link{InfoHash: v1, HasV1: true}},
		{"first dn xl so win", "magnet:?xt=urn:btih:" + hashHex + "&dn=a&dn=b&xl=1&xl=2&so=1&so=2",
			Link{InfoHash: v1, HasV1: true, Name: "a", Length: 1, Select: "1"}},
		{"empty tr and ws skipped", "magnet:?xt=urn:btih:" + hashHex + "&tr=&ws=",
			Link{InfoHash: v1, HasV1: true}},
		{"case-insensitive names and urn", "magnet:?XT=URN:BTIH:" + hashHex + "&DN=x",
			Link{InfoHash: v1, HasV1: true, Name: "x"}},
		{"max port and xl zero", "magnet:?xt=urn:btih:" + hashHex + "&x.pe=h:65535&xl=0",
			Link{InfoHash: v1, HasV1: true, Peers: []string{"h:65535"}}},
	}
	if len(validLinks) != 12 {
		t.Fatal("validLinks and the table are out of step")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.uri)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.uri, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tt.uri, got, tt.want)
			}
			s := got.String()
			again, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(String()) of %q: %v", s, err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip via %q\n got %+v\nwant %+v", s, again, got)
			}
		})
	}
}

func TestStringCanonical(t *testing.T) {
	l := Link{
		InfoHash: mustHex20(t, hashHex), HasV1: true,
		InfoHashV2: mustHex32(t, hashV2Hex), HasV2: true,
		Name: "a b&c", Length: 42,
		Trackers: []string{"udp://t:1"}, WebSeeds: []string{"http://w/"},
		Peers: []string{"[::1]:2"}, Select: "0,2",
	}
	want := "magnet:?xt=urn:btih:" + hashHex + "&xt=urn:btmh:1220" + hashV2Hex +
		"&dn=a+b%26c&xl=42&tr=udp%3A%2F%2Ft%3A1&ws=http%3A%2F%2Fw%2F&x.pe=%5B%3A%3A1%5D%3A2&so=0%2C2"
	if got := l.String(); got != want {
		t.Fatalf("String()\n got %s\nwant %s", got, want)
	}
}

func TestParseInvalid(t *testing.T) {
	h := "magnet:?xt=urn:btih:" + hashHex
	tests := []struct {
		name string
		uri  string
		want string // substring of the error
	}{
		{"missing xt", "magnet:?dn=x&tr=udp://t:1", "no xt=urn:btih or urn:btmh"},
		{"empty", "", "not a magnet link"},
		{"only other xt namespaces", "magnet:?xt=urn:sha1:ABCD", "no xt=urn:btih or urn:btmh"},
		{"hex length 39", "magnet:?xt=urn:btih:" + hashHex[:39], "is 39 characters; want 40 hex digits or 32 base32"},
		{"hex length 41", "magnet:?xt=urn:btih:" + hashHex + "a", "is 41 characters; want 40 hex digits or 32 base32"},
		{"bad hex digit", "magnet:?xt=urn:btih:" + hashHex[:39] + "g", "not valid hex"},
		{"bad base32", "magnet:?xt=urn:btih:" + hashBase32[:31] + "1", "not valid base32"},
		{"btmh wrong prefix", "magnet:?xt=urn:btmh:1114" + hashV2Hex[:40], `multihash prefix "1114"`},
		{"btmh short", "magnet:?xt=urn:btmh:1220" + hashV2Hex[:62], "want 68"},
		{"btmh bad hex", "magnet:?xt=urn:btmh:1220" + hashV2Hex[:63] + "z", "not valid hex"},
		{"wrong scheme", "http://example.com/?xt=urn:btih:" + hashHex, "not a magnet link"},
		{"no query", "magnet:xt=urn:btih:" + hashHex, "has no query"},
		{"x.pe without port", h + "&x.pe=192.0.2.1", "not host:port"},
		{"x.pe port 0", h + "&x.pe=192.0.2.1:0", "out of range 1-65535"},
		{"x.pe port 70000", h + "&x.pe=192.0.2.1:70000", "out of range 1-65535"},
		{"x.pe empty port", h + "&x.pe=192.0.2.1:", "not a number"},
		{"x.pe unbracketed IPv6", h + "&x.pe=2001:db8::1:80", "not host:port"},
		{"x.pe bracketed IPv4", h + "&x.pe=[192.0.2.1]:80", "not an IPv6 address"},
		{"x.pe bad host", h + "&x.pe=a%20b:80", "not a valid host name"},
		{"xl negative", h + "&xl=-5", "xl \"-5\" must be a non-negative integer"},
		{"xl not a number", h + "&xl=abc", "must be a non-negative integer"},
		{"xl overflow", h + "&xl=99999999999999999999", "out of range"},
		{"over-long input", h + "&dn=" + strings.Repeat("a", maxURILen), "the limit is 65536"},
		{"too many params", h + strings.Repeat("&tr=x", maxParams), "more than 1024 parameters"},
		{"conflicting btih", h + "&xt=urn:btih:" + strings.Repeat("0", 40), "conflicting btih"},
		{"conflicting btmh", "magnet:?xt=urn:btmh:1220" + hashV2Hex + "&xt=urn:btmh:1220" + strings.Repeat("0", 64), "conflicting btmh"},
		{"bad escape in dn", h + "&dn=%zz", "dn: invalid URL escape"},
		{"bad escape in name", h + "&d%zz=1", "parameter name"},
		{"escaping would exceed cap", h + "&tr=" + strings.Repeat("/", maxURILen/2), "once escaped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse(tt.uri)
			if err == nil {
				t.Fatalf("Parse succeeded with %+v; want error containing %q", l, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "magnet: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error is %d bytes; hostile input should not inflate it", len(err.Error()))
			}
		})
	}
}

func TestParseInfoHash(t *testing.T) {
	want := mustHex20(t, hashHex)
	for _, s := range []string{hashHex, strings.ToUpper(hashHex), hashBase32, strings.ToLower(hashBase32)} {
		got, err := ParseInfoHash(s)
		if err != nil || got != want {
			t.Errorf("ParseInfoHash(%q) = %x, %v; want %x", s, got, err, want)
		}
	}
	for _, s := range []string{"", hashHex[:39], hashHex + "0", hashBase32 + "=", "urn:btih:" + hashHex,
		strings.Repeat("g", 40), strings.Repeat("1", 32), "ſ" + hashBase32[2:]} {
		if _, err := ParseInfoHash(s); err == nil || !strings.HasPrefix(err.Error(), "magnet: info-hash ") {
			t.Errorf("ParseInfoHash(%q) error = %v; want an info-hash error", s, err)
		}
	}
}

func TestExactlyAtLimits(t *testing.T) {
	h := "magnet:?xt=urn:btih:" + hashHex
	// maxParams parameters in all, counting the xt.
	uri := h + strings.Repeat("&tr=x", maxParams-1)
	l, err := Parse(uri)
	if err != nil {
		t.Fatalf("at the parameter cap: %v", err)
	}
	if len(l.Trackers) != maxParams-1 {
		t.Fatalf("got %d trackers", len(l.Trackers))
	}
	uri = h + "&dn="
	uri += strings.Repeat("a", maxURILen-len(uri))
	if _, err := Parse(uri); err != nil {
		t.Fatalf("at the length cap: %v", err)
	}
}
