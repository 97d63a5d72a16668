package tracker

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
)

func testAnnouncer(tiers [][]string, left *atomic.Int64) *Announcer {
	a := NewAnnouncer(Config{
		Tiers: tiers, InfoHash: ih, PeerID: peerID, Port: 6881, Client: testClient(),
		Progress: func() Progress { return Progress{Left: left.Load()} },
	})
	a.minInterval, a.retryBase = 10*time.Millisecond, 10*time.Millisecond
	return a
}

// collect runs a until stop, gathering what it finds.
type run struct {
	found  chan Found
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, a *Announcer) *run {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{found: make(chan Found, 1000), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); a.Run(ctx, r.found) }()
	t.Cleanup(r.stop)
	return r
}

func (r *run) stop() {
	r.cancel()
	<-r.done
}

func (r *run) next(t *testing.T) Found {
	t.Helper()
	select {
	case f := <-r.found:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no peer found")
		return Found{}
	}
}

// A tier tries its trackers in turn and moves the one that answers to
// the front; the events are started, completed, stopped, in that order,
// to the tracker that knows us.
func TestAnnouncerTierAndEvents(t *testing.T) {
	down, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "udp://" + down.LocalAddr().String()
	down.Close()
	good := newFakeHTTP(t, seed1)
	var left atomic.Int64
	left.Store(100)
	a := testAnnouncer([][]string{{downURL, good.announceURL(), "wss://skipped.example"}}, &left)
	a.tiers[0] = []string{downURL, good.announceURL()} // a known order, not the shuffle's
	if a.Trackers() != 2 {
		t.Fatalf("%d trackers, want 2 (wss skipped)", a.Trackers())
	}
	r := start(t, a)
	if f := r.next(t); !slices.Equal(f.Peers, []netip.AddrPort{seed1}) || f.From != good.addr() {
		t.Fatalf("found %+v", f)
	}
	testutil.WaitFor(t, 5*time.Second, "the answering tracker at the front", func() bool {
		return good.count() == 1
	})
	left.Store(0)
	a.Completed()
	// Answered, not just received: a stop racing the answer would say
	// completed again, as it must when it cannot know.
	testutil.WaitFor(t, 5*time.Second, "a completed announce answered", func() bool {
		return good.count() == 2 && a.Stats().Announces == 2
	})
	r.stop()
	if ev := good.events(); !slices.Equal(ev, []string{"started", "completed", "stopped"}) {
		t.Errorf("events %q", ev)
	}
	if a.tiers[0][0] != good.announceURL() {
		t.Errorf("tier order %v: the tracker that answered is not first", a.tiers[0])
	}
	good.mu.Lock()
	q := good.requests[1]
	good.mu.Unlock()
	if q.Get("left") != "0" {
		t.Errorf("completed with left=%s", q.Get("left"))
	}
}

// Tiers do not wait for each other: a silent tracker in the first does
// not hold back the peers of the second, and the stopped announce on
// exit is bounded.
func TestAnnouncerSilentTier(t *testing.T) {
	silent, err := adversary.NewBadTracker("127.0.0.1", adversary.TrackerSilent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(silent.Close)
	good := newFakeUDP(t, "127.0.0.1", seed2)
	var left atomic.Int64
	a := testAnnouncer([][]string{{silent.HTTPURL}, {good.url()}}, &left)
	a.cfg.Client.udpBase = time.Second
	r := start(t, a)
	if f := r.next(t); !slices.Equal(f.Peers, []netip.AddrPort{seed2}) {
		t.Fatalf("found %+v", f)
	}
	testutil.WaitFor(t, 5*time.Second, "the silent tracker asked", func() bool { return silent.Requests.Load() == 1 })
	if s := a.Stats(); s.Timeouts != 0 || s.AnnounceErrors != 0 {
		t.Errorf("the silent tracker's announce ended before the other tier's peers came: %+v", s)
	}
	begin := time.Now()
	r.stop()
	if d := time.Since(begin); d > StopTimeout+time.Second {
		t.Errorf("stopping took %v", d)
	}
	if _, _, ev := good.stats(); !slices.Equal(ev, []Event{Started, Stopped}) {
		t.Errorf("events %v", ev)
	}
}

// The interval the tracker asks for is honoured: the next announce comes
// no sooner, and with no event.
func TestAnnouncerInterval(t *testing.T) {
	good := newFakeHTTP(t, seed1)
	good.mu.Lock()
	good.interval = 1
	good.mu.Unlock()
	var left atomic.Int64
	a := testAnnouncer([][]string{{good.announceURL()}}, &left)
	a.maxInterval = time.Hour
	start(t, a)
	testutil.WaitFor(t, 5*time.Second, "a second announce", func() bool { return good.count() >= 2 })
	if ev := good.events(); ev[0] != "started" || ev[1] != "" {
		t.Errorf("events %q", ev)
	}
}

// Trackers that all fail are retried with a growing pause, bounded.
func TestAnnouncerRetry(t *testing.T) {
	a := NewAnnouncer(Config{})
	if a.retry(0) != RetryBase || a.retry(1) != 2*RetryBase || a.retry(100) != MaxRetry {
		t.Errorf("retry %v %v %v", a.retry(0), a.retry(1), a.retry(100))
	}
	bad, err := adversary.NewBadTracker("127.0.0.1", adversary.TrackerGarbage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bad.Close)
	var left atomic.Int64
	a = testAnnouncer([][]string{{bad.HTTPURL}}, &left)
	start(t, a)
	// The tracker counts a request before our announcer has read the
	// answer: wait for the announcer's own count.
	testutil.WaitFor(t, 5*time.Second, "three bad answers counted", func() bool { return a.Stats().BadAnswers >= 3 })
	if n := bad.Requests.Load(); n < 3 {
		t.Errorf("the tracker saw %d requests", n)
	}
}

// MinAnnounceInterval and MaxAnnounceInterval bound what a tracker asks;
// a torrent short of peers comes back after NeedPeersInterval unless the
// min interval is longer.
func TestAnnounceIntervalBounds(t *testing.T) {
	a := NewAnnouncer(Config{})
	for _, c := range []struct {
		iv, min   time.Duration
		needPeers bool
		want      time.Duration
	}{
		{0, 0, false, DefaultAnnounceInterval},
		{time.Second, 0, false, MinAnnounceInterval},
		{seconds(1 << 40), 0, false, MaxAnnounceInterval},
		{10 * time.Minute, 20 * time.Minute, false, 20 * time.Minute},
		{30 * time.Minute, 0, true, NeedPeersInterval},
		{30 * time.Minute, 15 * time.Minute, true, 15 * time.Minute},
		{2 * time.Minute, 0, true, 2 * time.Minute},
		{0, 0, true, NeedPeersInterval},
	} {
		if got := a.interval(Response{Interval: c.iv, MinInterval: c.min}, c.needPeers); got != c.want {
			t.Errorf("interval %v min %v need %v: %v, want %v", c.iv, c.min, c.needPeers, got, c.want)
		}
	}
}

// One answer is one Found, however many peers it names: the swarm takes
// them as one event.
func TestAnnouncerOneFoundPerAnswer(t *testing.T) {
	bt, err := adversary.NewBadTracker("127.0.0.1", adversary.TrackerPeerFlood, seed1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bt.Close)
	var left atomic.Int64
	a := testAnnouncer([][]string{{bt.HTTPURL}}, &left)
	r := start(t, a)
	founds, peers := 0, 0
	for peers < MaxPeersPerAnswer {
		f := r.next(t)
		founds++
		peers += len(f.Peers)
	}
	if founds != 1 || peers != MaxPeersPerAnswer {
		t.Errorf("%d peers in %d Founds, want %d in one", peers, founds, MaxPeersPerAnswer)
	}
}

// A UDP tracker that does not answer costs its tier-mates one attempt
// (UDPTimeoutBase), not the whole schedule: the next tracker of the tier
// is asked after the first attempt, and the silent one gets its next,
// longer, attempt only at the next round.
func TestAnnouncerDeadUDPYields(t *testing.T) {
	silent := newFakeUDP(t, "127.0.0.1")
	silent.setDrop(func(int) bool { return true })
	good := newFakeHTTP(t, seed1)
	var left atomic.Int64
	a := testAnnouncer([][]string{{silent.url(), good.announceURL()}}, &left)
	a.tiers[0] = []string{silent.url(), good.announceURL()}
	a.cfg.Client.udpBase = 50 * time.Millisecond
	r := start(t, a)
	r.next(t)
	if _, packets, _ := silent.stats(); packets != 1 {
		t.Errorf("the silent tracker got %d packets before its tier-mate was asked, want 1", packets)
	}
	if a.tiers[0][0] != good.announceURL() {
		t.Errorf("tier %v", a.tiers[0])
	}

	// Alone in its tier, it is asked with BEP 15's growing waits, one
	// attempt a round.
	c := a.cfg.Client
	n := 0
	for attempt := range c.udpAttempts + 1 {
		_, err := c.announce(ctxT(t, 5*time.Second), silent.url(), Request{InfoHash: ih}, min(attempt, c.udpAttempts-1), min(attempt, c.udpAttempts-1))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		n++
	}
	if _, packets, _ := silent.stats(); packets != 1+n {
		t.Errorf("%d packets, want one per attempt (%d)", packets, 1+n)
	}
}

// BEP 3's tracker id is sent back, and a stopped announce asks for no
// peers.
func TestAnnouncerTrackerIDAndStopped(t *testing.T) {
	good := newFakeHTTP(t, seed1)
	good.trackerID = "id \x00&x"
	var left atomic.Int64
	a := testAnnouncer([][]string{{good.announceURL()}}, &left)
	r := start(t, a)
	r.next(t)
	r.stop()
	good.mu.Lock()
	defer good.mu.Unlock()
	if len(good.requests) != 2 {
		t.Fatalf("%d announces", len(good.requests))
	}
	first, stopped := good.requests[0], good.requests[1]
	if first.Has("trackerid") || stopped.Get("trackerid") != "id \x00&x" {
		t.Errorf("tracker ids sent: %q then %q", first.Get("trackerid"), stopped.Get("trackerid"))
	}
	if stopped.Get("event") != "stopped" || stopped.Get("numwant") != "0" || first.Get("numwant") != "50" {
		t.Errorf("numwant %s, then %s at %s", first.Get("numwant"), stopped.Get("numwant"), stopped.Get("event"))
	}
}
