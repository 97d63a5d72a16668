package daemon

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"node/dht"
	"node/peer"
	"node/routing"
)

// The lookups kept stay the latest MaxLookups, newest first, each with at
// most MaxLookupAnswers answers, the first sent.
func TestLookupBounds(t *testing.T) {
	d := &tracedDHT{}
	start := time.Now()
	var evs []dht.TraceEvent
	for i := range MaxLookupAnswers + 50 {
		evs = append(evs, dht.TraceEvent{
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)}), 1),
			Sent: start.Add(time.Duration(MaxLookupAnswers+50-i) * time.Millisecond), Dist: math.NaN(),
		})
	}
	for i := range 3 * MaxLookups {
		var target routing.ID
		target[0] = byte(i)
		d.keepEvents(start, evs, target, "get_peers", dht.LookupStats{Peers: i})
	}
	ls := d.latest()
	if len(ls) != MaxLookups {
		t.Fatalf("%d lookups kept, want %d", len(ls), MaxLookups)
	}
	if ls[0].Peers != 3*MaxLookups-1 || ls[MaxLookups-1].Peers != 2*MaxLookups {
		t.Fatalf("kept lookups %d..%d, want the latest, newest first", ls[0].Peers, ls[MaxLookups-1].Peers)
	}
	if n := len(ls[0].Answers); n != MaxLookupAnswers {
		t.Fatalf("%d answers kept, want %d", n, MaxLookupAnswers)
	}
	if ls[0].Answers[0].SentMS > ls[0].Answers[1].SentMS || ls[0].Answers[0].Dist != nil {
		t.Fatalf("answers %+v", ls[0].Answers[:2])
	}
}

// Rates span the latest RateWindow samples.
func TestRateWindow(t *testing.T) {
	e := &entry{}
	at := time.Now()
	for i := range 3 * RateWindow {
		e.addSample(sample{at: at.Add(time.Duration(i) * time.Second), down: int64(i) * 1000})
	}
	if len(e.samples) != RateWindow {
		t.Fatalf("%d samples, want %d", len(e.samples), RateWindow)
	}
	if r := e.view().DownRate; r != 1000 {
		t.Fatalf("down rate %v, want 1000", r)
	}
}

// The torrents file and saved .torrents are read within their bounds,
// and a file of more than MaxTorrents torrents is refused.
func TestStateFileBounds(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 101), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readBounded(p, 100); err == nil {
		t.Fatal("read past the bound")
	}
	if b, err := readBounded(p, 101); err != nil || len(b) != 101 {
		t.Fatalf("read %d, %v", len(b), err)
	}
	var recs []string
	for i := range MaxTorrents + 1 {
		ih := make([]byte, 20)
		ih[0], ih[1] = byte(i>>8), byte(i)
		recs = append(recs, fmt.Sprintf(`{"info_hash":%q,"dir":"/d"}`, hex.EncodeToString(ih)))
	}
	body := `{"version":1,"torrents":[` + strings.Join(recs, ",") + `]}`
	if len(body) > MaxStateBytes {
		t.Fatalf("MaxStateBytes %d holds no %d torrents", MaxStateBytes, MaxTorrents)
	}
	if _, err := decodeState([]byte(body)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("%d torrents: %v", MaxTorrents+1, err)
	}
	body = `{"version":1,"torrents":[` + strings.Join(recs[:MaxTorrents], ",") + `]}`
	if _, err := decodeState([]byte(body)); err != nil {
		t.Fatalf("%d torrents: %v", MaxTorrents, err)
	}
}

// A seed without peers is read every IdleSampleEvery, not every
// SampleEvery; one with a peer, a download, or one not read yet, at once.
func TestIdleSampleEvery(t *testing.T) {
	if IdleSampleEvery <= SampleEvery {
		t.Fatalf("IdleSampleEvery %v is no longer than SampleEvery %v", IdleSampleEvery, SampleEvery)
	}
	at := time.Now()
	seed := func() *entry {
		e := &entry{sess: peer.Stats{HaveInfo: true}}
		e.rec.Complete = true
		e.addSample(sample{at: at})
		return e
	}
	if e := seed(); !e.quietUntil(at.Add(IdleSampleEvery-time.Nanosecond)) || e.quietUntil(at.Add(IdleSampleEvery)) {
		t.Fatal("an idle seed is not read every IdleSampleEvery")
	}
	withPeer := seed()
	withPeer.sess.Peers = 1
	download := seed()
	download.rec.Complete = false
	fresh := seed()
	fresh.samples = nil
	for name, e := range map[string]*entry{"with a peer": withPeer, "downloading": download, "not read yet": fresh} {
		if e.quietUntil(at.Add(SampleEvery)) {
			t.Errorf("a torrent %s waits for the idle period", name)
		}
	}
}
