package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"node/dht"
	"node/internal/testutil"
	"node/krpc"
)

// limitNode starts the DHT node the command line args make, on
// 127.0.<subnet>.1, with no bootstrap, state or port mapping.
func limitNode(t *testing.T, subnet int, args ...string) *dht.Node {
	t.Helper()
	var f dhtFlags
	fs := newFlagSet("t", &flagCapture{}, "t")
	f.register(fs, fmt.Sprintf("127.0.%d.1:0", subnet))
	if err := fs.Parse(append([]string{"--listen6", "none", "--bootstrap", "", "--state-dir", ""}, args...)); err != nil {
		t.Fatal(err)
	}
	n, _, err := f.startNode(zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// floodPings sends count pings from one socket on 127.0.<subnet>.2 as
// fast as it can. With wantAll it reads the answers, keeping at most
// floodWindow unanswered so that no socket buffer overflows, and fails
// unless every ping is answered; else it sends them all at once and
// leaves the verdict to the node's counters.
func floodPings(t *testing.T, n *dht.Node, subnet, count int, wantAll bool) {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(fmt.Sprintf("127.0.%d.2:0", subnet))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := net.UDPAddrFromAddrPort(n.Addr())
	sent := 0
	send := func() {
		msg := fmt.Sprintf("d1:ad2:id20:%020de1:q4:ping1:t4:%04d1:y1:qe", sent, sent%10000)
		if _, err := c.WriteTo([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if !wantAll {
		for sent < count {
			send()
		}
		return
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got := 0; got < count; got++ {
		for sent < count && sent-got < floodWindow {
			send()
		}
		if _, _, err := c.ReadFrom(buf); err != nil {
			st := transportStats(t, n)
			t.Fatalf("%d of %d pings answered (%v); %d rate-limited, %d blocked, %d unsent", got, count, err, st.RateLimited, st.Blocked, st.SendDropped)
		}
	}
}

// floodWindow is how many pings floodPings keeps unanswered: far beyond
// what the default limits allow at loopback speed, far below what fills
// a socket buffer.
const floodWindow = 32

// waitStat waits until the node's transport counters satisfy cond.
func waitStat(t *testing.T, n *dht.Node, what string, cond func(krpc.Stats) bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, func() bool { return cond(transportStats(t, n)) })
}

func transportStats(t *testing.T, n *dht.Node) krpc.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := n.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s.Transport
}

// floodCount is more pings than any default allowance lets through from
// one source (DefaultBurstPerIP) and more than a low send budget does,
// yet few enough for loopback's socket buffers.
const floodCount = 300

// blockFlood is enough pings to block a source of burst 1 many times
// over (krpc.BlockFactor drops).
const blockFlood = 50

// On the command line 0 turns each DHT limit off: a flood from one source
// is answered in full, where the default limits (the control) drop it.
func TestZeroTurnsLimitsOff(t *testing.T) {
	// The control: the defaults drop most of the flood.
	n := limitNode(t, 181, "--send-rate", "0")
	floodPings(t, n, 181, floodCount, false)
	waitStat(t, n, "the default limits to drop a flood", func(s krpc.Stats) bool { return s.RateLimited > 0 })
	for i, c := range []struct {
		name string
		args []string
	}{
		// Each with the other limits off, so that only the one under
		// test could drop anything.
		{"rate-per-ip", []string{"--rate-per-ip", "0", "--send-rate", "0"}},
		{"burst-per-ip", []string{"--burst-per-ip", "0", "--send-rate", "0"}},
		{"send-rate", []string{"--rate-per-ip", "0", "--send-rate", "0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			subnet := 182 + i
			n := limitNode(t, subnet, c.args...)
			floodPings(t, n, subnet, floodCount, true)
			if st := transportStats(t, n); st.RateLimited != 0 || st.SendDropped != 0 || st.Blocked != 0 {
				t.Fatalf("%q: %d rate-limited, %d unsent, %d blocked", c.args, st.RateLimited, st.SendDropped, st.Blocked)
			}
		})
	}
	// The send budget's control: a budget of 1 packet/s drops answers.
	t.Run("send-rate control", func(t *testing.T) {
		n := limitNode(t, 185, "--rate-per-ip", "0", "--send-rate", "1")
		floodPings(t, n, 185, floodCount, false)
		waitStat(t, n, "--send-rate 1 to drop answers", func(s krpc.Stats) bool { return s.SendDropped > 0 })
	})
}

// --block-for 0 never blocks: a source over its rate has its excess
// dropped, as with any block time, but stays unblocked however long it
// floods; with a block time the same flood is blocked.
func TestBlockForZeroNeverBlocks(t *testing.T) {
	n := limitNode(t, 187, "--rate-per-ip", "1", "--burst-per-ip", "1", "--block-for", "1h")
	floodPings(t, n, 187, blockFlood, false)
	waitStat(t, n, "--block-for 1h to block the flood", func(s krpc.Stats) bool { return s.BlockedIPs > 0 })

	n = limitNode(t, 186, "--rate-per-ip", "1", "--burst-per-ip", "1", "--block-for", "0")
	floodPings(t, n, 186, blockFlood, false)
	// Every ping of the flood is counted, admitted or dropped, before
	// the verdict is read.
	waitStat(t, n, "the flood to arrive", func(s krpc.Stats) bool { return s.QueriesIn+s.RateLimited+s.Blocked >= blockFlood })
	if st := transportStats(t, n); st.RateLimited == 0 || st.Blocked != 0 || st.BlockedIPs != 0 {
		t.Fatalf("--block-for 0: %d rate-limited, %d dropped as blocked, %d sources blocked", st.RateLimited, st.Blocked, st.BlockedIPs)
	}
}

// Every limit flag reaches the DHT's configuration off at 0, in the form
// package dht and krpc take for off, and a negative value is refused.
func TestLimitFlagsZeroConfig(t *testing.T) {
	cfgFor := func(args ...string) (dht.Config, error) {
		var f dhtFlags
		fs := newFlagSet("t", &flagCapture{}, "t")
		f.register(fs, "127.0.0.1:0")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return f.config(zap.NewNop())
	}
	def, err := cfgFor()
	if err != nil {
		t.Fatal(err)
	}
	if def.RatePerIP != krpc.DefaultRatePerIP || def.BurstPerIP != krpc.DefaultBurstPerIP || def.BlockFor != krpc.DefaultBlockFor ||
		def.SendRate != krpc.DefaultSendRate || def.MaxAmplification != krpc.DefaultMaxAmplification {
		t.Fatalf("defaults: %+v", def)
	}
	for _, c := range []struct {
		flag, negative string
		off            func(dht.Config) bool
	}{
		{"rate-per-ip", "-1", func(c dht.Config) bool { return c.RatePerIP == 0 }},
		{"burst-per-ip", "-1", func(c dht.Config) bool { return c.RatePerIP == 0 }},
		{"block-for", "-1s", func(c dht.Config) bool { return c.BlockFor < 0 && c.RatePerIP == krpc.DefaultRatePerIP }},
		{"send-rate", "-1", func(c dht.Config) bool { return c.SendRate == 0 }},
		{"max-amplification", "-1", func(c dht.Config) bool { return c.MaxAmplification == 0 }},
	} {
		cfg, err := cfgFor("--" + c.flag + "=0")
		if err != nil || !c.off(cfg) {
			t.Errorf("--%s 0: %+v, %v", c.flag, cfg, err)
		}
		if _, err := cfgFor("--" + c.flag + "=" + c.negative); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("--%s %s: %v, want refused as negative", c.flag, c.negative, err)
		}
	}
	// The peer rate caps are off at 0 too (peer.Config: 0 is unlimited).
	up, down := new(rateFlag), new(rateFlag)
	if up.Set("0") != nil || down.Set("0/s") != nil || up.bytes != 0 || down.bytes != 0 {
		t.Errorf("rate caps at 0: %d %d", up.bytes, down.bytes)
	}
}
