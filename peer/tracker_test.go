package peer

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/peer/tracker"
)

// miniTracker is an honest HTTP tracker on loopback: it remembers every
// peer that announced (at the address the request came from) and names
// the others.
type miniTracker struct {
	*httptest.Server
	mu     sync.Mutex
	peers  map[netip.AddrPort]bool
	events []string
}

func newMiniTracker(t *testing.T) *miniTracker {
	m := &miniTracker{peers: make(map[netip.AddrPort]bool)}
	m.Server = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.Close)
	return m
}

func (m *miniTracker) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := netip.ParseAddrPort(r.RemoteAddr)
	port, perr := strconv.Atoi(q.Get("port"))
	if err != nil || perr != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	me := netip.AddrPortFrom(from.Addr(), uint16(port))
	m.mu.Lock()
	m.events = append(m.events, me.String()+" "+q.Get("event"))
	var out []byte
	for p := range m.peers {
		if p != me {
			out = append(out, p.Addr().AsSlice()...)
			out = binary.BigEndian.AppendUint16(out, p.Port())
		}
	}
	if q.Get("event") == "stopped" {
		delete(m.peers, me)
	} else {
		m.peers[me] = true
	}
	m.mu.Unlock()
	fmt.Fprintf(w, "d8:intervali1800e5:peers%d:%se", len(out), out)
}

func (m *miniTracker) sawEvent(e string) func() bool {
	return func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return slices.Contains(m.events, e)
	}
}

// A leecher with no DHT finds the seeder through a tracker alone, and
// tells it started, completed and, on exit, stopped.
func TestFetchThroughTrackerAlone(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	tr := newMiniTracker(t)
	tiers := [][]string{{tr.URL + "/announce"}}
	seedLn, leechLn := listenTCP(t, "127.0.171.1:0"), listenTCP(t, "127.0.171.2:0")
	seedAddr, leechAddr := addrOf(seedLn.Addr()), addrOf(leechLn.Addr())
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: seedLn, Trackers: tiers,
		Dial: boundDial(seedAddr.Addr().String())})
	// The tracker sees a peer at the address its request came from,
	// which is each one's listening address.
	testutil.WaitFor(t, 10*time.Second, "the seeder's announce", tr.sawEvent(seedAddr.String()+" started"))
	ctx, cancel := context.WithCancel(context.Background())
	leech, err := New(Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: leechLn, Trackers: tiers,
		Dial: boundDial(leechAddr.Addr().String())})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- leech.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	waitDone(t, leech, 30*time.Second)
	sameTree(t, src, dst, "content")
	testutil.WaitFor(t, 10*time.Second, "the leecher's completed announce", tr.sawEvent(leechAddr.String()+" completed"))
	s, _ := leech.Stats(t.Context())
	if s.Trackers.Announces < 2 || s.Trackers.PeersFound < 1 {
		t.Errorf("tracker stats %+v", s.Trackers)
	}
	cancel()
	<-ran
	ran <- nil // for the deferred wait
	if !tr.sawEvent(leechAddr.String() + " stopped")() {
		t.Error("no stopped announce on exit")
	}
}

// Hostile trackers cost a fetch the DHT serves nothing: the fetch
// completes while the silent ones still hold their first request, a
// flood of peers stays within the per-source cap, and stopping waits for
// no tracker longer than tracker.StopTimeout.
func TestHostileTrackersDoNotSlowTheDHT(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mi := makeContent(t, src, "content", testFiles, 64<<10)
	seedLn := listenTCP(t, "127.0.172.1:0")
	runTorrent(t, Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: seedLn})

	var tiers [][]string
	var silent []*adversary.BadTracker
	for _, attack := range []adversary.TrackerAttack{adversary.TrackerSilent, adversary.TrackerPeerFlood,
		adversary.TrackerGarbage, adversary.TrackerRedirectLoop, adversary.TrackerWrongTx} {
		bt, err := adversary.NewBadTracker("127.0.172.9", attack)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bt.Close)
		tiers = append(tiers, []string{bt.HTTPURL}, []string{bt.UDPURL})
		if attack == adversary.TrackerSilent || attack == adversary.TrackerWrongTx {
			silent = append(silent, bt)
		}
	}
	leechDHT := &fakeDHT{
		addr:  netip.MustParseAddrPort("127.0.172.2:6881"),
		from:  netip.MustParseAddrPort("127.0.172.8:6881"),
		peers: []netip.AddrPort{addrOf(seedLn.Addr())},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leech, err := New(Config{InfoHash: mi.Info.InfoHash, Dir: dst, Listener: listenTCP(t, "127.0.172.2:0"),
		DHT: leechDHT, Trackers: tiers})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- leech.Run(ctx) }()
	waitDone(t, leech, 30*time.Second)
	sameTree(t, src, dst, "content")
	s, _ := leech.Stats(t.Context())
	// The silent trackers' first announces are still waiting (HTTP
	// 15 s, UDP 15 s for the first attempt): the fetch did not.
	if s.Trackers.Timeouts != 0 {
		t.Logf("a silent tracker timed out before the fetch was done: %+v", s.Trackers)
	}
	for _, bt := range silent {
		if bt.Requests.Load() == 0 {
			t.Errorf("tracker %s never asked", bt.HTTPURL)
		}
	}
	if s.Known > maxAddrsPerSource+2 {
		t.Errorf("%d candidates known: the flood got past the per-source cap", s.Known)
	}
	testutil.WaitFor(t, 10*time.Second, "the hostile answers counted", func() bool {
		s, _ := leech.Stats(t.Context())
		tr := s.Trackers
		return tr.PeersDropped > 0 && tr.BadAnswers >= 2 && tr.Redirects >= 1 && tr.WrongTxID > 0
	})
	begin := time.Now()
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > tracker.StopTimeout+5*time.Second {
		t.Errorf("stopping took %v", d)
	}
}

// A tracker's answer is one event for the torrent's loop, however many
// peers it names: a flood of answers cannot fill the event queue one
// peer at a time.
func TestTrackerAnswerIsOneEvent(t *testing.T) {
	bt, err := adversary.NewBadTracker("127.0.173.9", adversary.TrackerPeerFlood)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bt.Close)
	ln := listenTCP(t, "127.0.173.1:0")
	t.Cleanup(func() { ln.Close() })
	tor, err := New(Config{InfoHash: [20]byte{1}, Dir: t.TempDir(), Listener: ln, Trackers: [][]string{{bt.HTTPURL}}})
	if err != nil {
		t.Fatal(err)
	}
	// The loop does not run: the events stay queued for the test.
	tor.runTrackers()
	defer func() { tor.cancel(); tor.wg.Wait() }()
	testutil.WaitFor(t, 10*time.Second, "the answer's event", func() bool { return len(tor.events) > 0 })
	ev, ok := (<-tor.events).(addrsEvent)
	if !ok || len(ev.addrs) != tracker.MaxPeersPerAnswer || ev.from.Addr() != netip.MustParseAddr("127.0.173.9") {
		t.Fatalf("first event %T with %d peers from %v, want the answer's %d in one", ev, len(ev.addrs), ev.from, tracker.MaxPeersPerAnswer)
	}
	if n := len(tor.events); n != 0 {
		t.Errorf("%d more events queued", n)
	}
}
