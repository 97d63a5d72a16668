package main

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"node/internal/adversary"
	"node/internal/testutil"
	"node/internal/testutil/promtest"
	"node/krpc"
	"node/routing"
)

// node dht --metrics 127.0.0.1:0 serves Prometheus metrics at the URL its
// log gives: the DHT's, per family, and the Go runtime's, whose counters
// move as the node bootstraps and is queried, and a flood from one source
// shows as rate limited.
func TestDHTMetricsFlag(t *testing.T) {
	boot := startNetwork(t, 137, 5)
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"dht", "--listen", "127.0.137.100:0", "--bootstrap", boot, "--metrics", "127.0.0.1:0",
			"--log-json", "--status-interval", "0", "--no-port-mapping", "--state-dir="}, &lockedBuffer{}, &stderr)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-done:
			if c != exitOK {
				t.Errorf("dht exited %d: %s", c, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("dht did not stop on SIGINT")
		}
	}
	defer stop()

	var url, addr string
	testutil.WaitFor(t, 10*time.Second, "the metrics URL in the log", func() bool {
		for line := range strings.Lines(stderr.String()) {
			var l struct{ Msg, URL, Addr string }
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			switch l.Msg {
			case "dht node started":
				addr = l.Addr
			case "metrics listening":
				url = l.URL
			}
		}
		return url != "" && addr != ""
	})
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("metrics URL %q", url)
	}
	testutil.WaitFor(t, 20*time.Second, "a bootstrap lookup counted", func() bool {
		return promtest.Scrape(t, url, "").Value("node_dht_lookups_total", "method=find_node", "family=ipv4", "result=ok") >= 1
	})
	fams := promtest.Scrape(t, url, "")
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"node_dht_queries_sent_total", []string{"family=ipv4", "method=find_node"}},
		{"node_dht_responses_received_total", []string{"family=ipv4"}},
		{"node_dht_routing_table_nodes", []string{"family=ipv4"}},
		{"node_dht_lookup_duration_seconds", []string{"method=find_node", "family=ipv4"}},
	} {
		if v := fams.Value(c.name, c.labels...); v < 1 {
			t.Errorf("%s%v = %v, want at least 1", c.name, c.labels, v)
		}
	}
	// --listen 127.x gives the node an IPv6 socket on ::1 beside it,
	// whose series are there even when it has heard of no one.
	for _, name := range []string{"node_dht_routing_table_nodes", "node_dht_dropped_total"} {
		if v := fams.Value(name, "family=ipv6"); v < 0 {
			t.Errorf("%s has no ipv6 series", name)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Error("no Go or process metrics")
	}

	// One source floods the node, under the command's default limits, with
	// pings far past its burst: the drops show as rate_limited, and the
	// source among the blocked.
	bad, err := adversary.NewNode("127.0.137.250")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	to := netip.MustParseAddrPort(addr)
	const flood = (krpc.BlockFactor + 2) * krpc.DefaultBurstPerIP
	for i := range flood {
		_ = bad.Query(to, strconv.Itoa(i), krpc.MethodPing, &krpc.Args{ID: routing.ID{0x66}})
	}
	testutil.WaitFor(t, 10*time.Second, "the flood in the metrics", func() bool {
		fams := promtest.Scrape(t, url, "")
		return fams.Value("node_dht_dropped_total", "family=ipv4", "reason=rate_limited") >= 1 &&
			fams.Value("node_dht_blocked_sources", "family=ipv4") >= 1
	})
	stop()
	if _, err := http.Get(url); err == nil {
		t.Error("metrics still served after the node stopped")
	}
}

// A --metrics address that cannot be bound ends the command with an error
// that names the flag, and the node it started is closed.
func TestDHTMetricsFlagBadAddress(t *testing.T) {
	code, _, errOut := runCmd("dht", "--listen", "127.0.137.101:0", "--listen6", "none", "--bootstrap", "", "--metrics", "127.0.0.1:notaport",
		"--no-port-mapping", "--state-dir=")
	if code != exitFailure || !strings.Contains(errOut, "--metrics") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}
