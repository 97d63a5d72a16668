package portmap

import (
	"context"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
)

// UPnP deletes by external port and protocol alone. An add whose answer
// is lost leaves a port that may be ours or, when the gateway refused it
// (the refusal lost too), another LAN host's: Close deletes it only if
// the gateway's entry points at us.
func TestLostAddOtherHostsPort(t *testing.T) {
	g := gateway(t, 120, func(g *adversary.Gateway) {
		g.LoseAddReplies = true
		g.Others = map[string]string{"tcp:40001": "127.0.207.99"}
	})
	cfg := upnpConfig(g, &votes{})
	cfg.LocalIP = g.IP
	m := Start(cfg)
	testutil.WaitFor(t, 10*time.Second, "the first add", func() bool {
		a, _ := g.Count("tcp:40001")
		return a >= 1
	})
	_ = m.Close()
	g.Lock()
	defer g.Unlock()
	if g.OthersDeleted != 0 || g.Others["tcp:40001"] == "" {
		t.Errorf("another host's mapping deleted: %d; log %q", g.OthersDeleted, g.Log)
	}
}

// An add whose context ended before it was sent (Close came first) is
// not taken as maybe mapped: nothing was asked of the gateway.
func TestUPnPAddAfterCloseNotRecorded(t *testing.T) {
	g := gateway(t, 121, nil)
	cfg := upnpConfig(g, &votes{})
	cfg.LocalIP = g.IP
	bk, err := newUPnP(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, _, err := bk.add(ctx, "tcp", port, port, time.Minute)
	if err == nil || got != 0 {
		t.Errorf("add after cancel: %d, %v; want 0 and an error", got, err)
	}
	if a, _ := g.Count("tcp:40001"); a != 0 {
		t.Errorf("%d adds reached the gateway", a)
	}
}

// A port the gateway said it mapped for us is deleted at once; one it
// never confirmed, only if its entry is ours.
func TestUPnPRemoveChecksUnconfirmed(t *testing.T) {
	g := gateway(t, 122, func(g *adversary.Gateway) {
		g.Others = map[string]string{"udp:40002": "127.0.207.99"}
	})
	cfg := upnpConfig(g, &votes{})
	cfg.LocalIP = g.IP
	bk, err := newUPnP(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bk.add(t.Context(), "tcp", port, port, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := bk.remove(t.Context(), "tcp", port, port); err != nil || g.Mapped("tcp:40001") != 0 {
		t.Errorf("ours: %v, still mapped to %d", err, g.Mapped("tcp:40001"))
	}
	if err := bk.remove(t.Context(), "udp", port, 40002); err != nil {
		t.Errorf("another's: %v", err)
	}
	g.Lock()
	defer g.Unlock()
	if g.OthersDeleted != 0 {
		t.Errorf("another host's mapping deleted; log %q", g.Log)
	}
}
