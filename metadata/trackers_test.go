package metadata

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Create writes the first tracker to announce and, with more than one,
// every tier to announce-list; both survive a round trip, and the magnet
// link carries them in tier order.
func TestCreateTrackers(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tiers    [][]string
		announce string
		list     [][]string
		tr       string
	}{
		{nil, "", nil, ""},
		{[][]string{{"udp://a:1"}}, "udp://a:1", nil, "&tr=udp%3A%2F%2Fa%3A1"},
		{[][]string{{"http://a/announce", "udp://b:2"}, {}, {"udp://c:3"}}, "http://a/announce",
			[][]string{{"http://a/announce", "udp://b:2"}, {"udp://c:3"}},
			"&tr=http%3A%2F%2Fa%2Fannounce&tr=udp%3A%2F%2Fb%3A2&tr=udp%3A%2F%2Fc%3A3"},
	} {
		mi, err := Create(p, CreateOptions{Trackers: c.tiers})
		if err != nil {
			t.Fatal(err)
		}
		b, err := mi.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseMetaInfo(b)
		if err != nil {
			t.Fatal(err)
		}
		if back.Announce != c.announce || !slices.EqualFunc(back.AnnounceList, c.list, slices.Equal) {
			t.Errorf("%q: announce %q, list %q", c.tiers, back.Announce, back.AnnounceList)
		}
		if got, want := back.Magnet(), mi.Info.Magnet()+c.tr; got != want {
			t.Errorf("magnet %s, want %s", got, want)
		}
	}
}
