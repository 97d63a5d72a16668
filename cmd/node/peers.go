package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"node/dht"
	"node/magnet"
	"node/routing"
)

func runPeers(args []string, stdout, stderr io.Writer) error {
	var f dhtFlags
	fs := newFlagSet("peers", stderr, "node peers [flags] <infohash|magnet>")
	f.logLevel = "warn"
	f.register(fs, ":0")
	announce := fs.Int("announce", -1, "also announce that we serve the torrent on this TCP `port` (0: the UDP source port, BEP 5 implied_port)")
	timeout := fs.DurationP("timeout", "t", 60*time.Second, "give up after this long (0: never; the lookup still ends when it converges)")
	tracePath := fs.String("trace", "", "draw the lookup as an SVG picture in `file` when it ends (for a bug report)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usagef("want one info-hash or magnet link, got %d arguments", fs.NArg())
	}
	if *announce > 65535 {
		return usagef("--announce: port %d out of range", *announce)
	}
	ih, err := parseTarget(fs.Arg(0))
	if err != nil {
		return exitError{exitBadInput, err.Error()}
	}
	if *tracePath != "" {
		// Before the lookup, not a minute later when it has ended.
		if err := checkTracePath(*tracePath); err != nil {
			return usageError{err}
		}
	}
	log, ctx, stopped, err := f.untilStopped(stderr)
	if err != nil {
		return err
	}
	defer stopped()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}

	// A one-shot lookup must not enter other nodes' routing tables, where
	// it would be a dead entry once we exit: BEP 43 read-only does that,
	// and read-only nodes may still announce.
	n, _, err := f.startNode(log, func(c *dht.Config) { c.ReadOnly = true })
	if err != nil {
		return err
	}
	defer n.Close()
	// The lookup starts at once, from the bootstrap nodes and the saved
	// table; the bootstrap, which only fills our routing table, runs
	// beside it rather than a round trip or more ahead of it.
	bootCtx, stopBoot := context.WithCancel(ctx)
	booted := make(chan struct{})
	go func() {
		defer close(booted)
		if _, err := n.Bootstrap(bootCtx); err != nil && bootCtx.Err() == nil {
			log.Debug("bootstrap", zap.Error(err))
		}
	}()
	defer func() {
		stopBoot()
		<-booted
	}()

	peers := make(chan netip.AddrPort)
	done := make(chan struct{})
	count := 0
	go func() {
		defer close(done)
		for p := range peers {
			count++
			fmt.Fprintln(stdout, p)
		}
	}()
	var st dht.LookupStats
	lookupCtx := ctx
	var tr *dht.Trace
	if *tracePath != "" {
		tr = dht.NewTrace()
		lookupCtx = dht.WithTrace(ctx, tr)
	}
	if *announce >= 0 {
		var as dht.AnnounceStats
		as, err = n.Announce(lookupCtx, ih, *announce, peers)
		st = as.Lookup
		if err == nil {
			log.Info("announced", zap.Int("nodes", as.Announced))
		}
	} else {
		st, err = n.GetPeers(lookupCtx, ih, peers)
	}
	close(peers)
	<-done
	fmt.Fprintf(stderr, "%d peers, %d queries, %d answers, %v\n", count, st.Queries, st.Responses, st.Duration.Round(time.Millisecond))
	if tr != nil {
		sum := traceSummary{Method: "get_peers", Queries: st.Queries, Responses: st.Responses, Peers: count, Duration: st.Duration, Err: err}
		if werr := writeTraceFile(*tracePath, tr, sum); werr != nil {
			if err == nil {
				return fmt.Errorf("writing the trace: %w", werr)
			}
			fmt.Fprintf(stderr, "writing the trace: %v\n", werr)
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return exitError{exitNoPeers, "timed out"}
	case errors.Is(err, context.Canceled):
		return exitError{exitSignal, "interrupted"}
	case err != nil:
		return err
	case count == 0 && *announce < 0:
		return exitError{exitNoPeers, "no peers found"}
	}
	return nil
}

// parseTarget accepts a magnet link or a bare v1 info-hash (hex or base32).
func parseTarget(s string) (routing.ID, error) {
	if strings.HasPrefix(strings.ToLower(s), "magnet:") {
		l, err := magnet.Parse(s)
		if err != nil {
			return routing.ID{}, err
		}
		if !l.HasV1 {
			return routing.ID{}, errors.New("magnet link has no v1 info-hash (urn:btih); v2-only lookups are not supported yet")
		}
		return routing.ID(l.InfoHash), nil
	}
	ih, err := magnet.ParseInfoHash(s)
	return routing.ID(ih), err
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
