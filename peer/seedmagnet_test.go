package peer

import (
	"net/netip"
	"testing"
	"time"
)

// Serving a magnet link (NoDownload, node seed <magnet>) first needs the
// metadata: until it has it, a seed is worth dialling, lookups look for
// peers and trackers are asked for them. Once it has it, it wants nothing.
func TestServingMagnetWantsPeersUntilMetadata(t *testing.T) {
	mi := makeContent(t, t.TempDir(), "content", map[string]int{"f": 4 << 10}, 16<<10)
	tor, err := New(Config{InfoHash: mi.Info.InfoHash, Dir: t.TempDir(), NoDownload: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	seed := netip.MustParseAddrPort("127.0.246.31:6881")
	tor.addCandidateFrom(seed, netip.MustParseAddrPort("127.0.246.32:6881"), fromPex, true, now)
	if tor.wantNothing() {
		t.Error("wants nothing before the metadata")
	}
	if got := tor.dialable(now, 10); len(got) != 1 || got[0] != seed {
		t.Errorf("dialable %v: a seed named by PEX is not dialled for the metadata", got)
	}
	tor.saveProgress()
	if p := tor.progress.Load(); p == nil || !p.NeedPeers {
		t.Errorf("trackers are told we need no peers before the metadata: %+v", p)
	}
	if err := tor.setInfo(mi.Info); err != nil {
		t.Fatal(err)
	}
	defer tor.st.Close()
	if !tor.wantNothing() {
		t.Error("serving only, it still wants something once it has the metadata")
	}
	if got := tor.dialable(now, 10); len(got) != 0 {
		t.Errorf("dialable %v: a seed is dialled while we only serve", got)
	}
}
