package main

import (
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"node/cmd/node/metrics"
	"node/dht"
)

func runDHT(args []string, stderr io.Writer) error {
	var f dhtFlags
	fs := newFlagSet("dht", stderr, "node dht [flags]")
	f.register(fs, ":6881")
	readOnly := fs.Bool("read-only", false, "BEP 43 read-only: query the DHT but answer no queries")
	every := fs.Duration("status-interval", 30*time.Second, "how often to log a status line (0: never)")
	metricsAddr := fs.String("metrics", "", "TCP `address` to serve Prometheus metrics on, at /metrics (e.g. 127.0.0.1:9181; default none). Any address is taken: one beyond loopback shows the node's counters to whoever reaches it")
	f.registerPortMapping(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	log, ctx, stopped, err := f.untilStopped(stderr)
	if err != nil {
		return err
	}
	defer stopped()

	var dm *metrics.DHT
	if *metricsAddr != "" {
		dm = metrics.NewDHT()
	}
	n, cfg, err := f.startNode(log, func(c *dht.Config) {
		c.ReadOnly = *readOnly
		if dm != nil {
			c.OnLookup = dm.ObserveLookup
		}
	})
	if err != nil {
		return err
	}
	var ms *metrics.Server
	if dm != nil {
		dm.Watch(n)
		if ms, err = metrics.Listen(*metricsAddr, metrics.NewRegistry(dm), log); err != nil {
			n.Close()
			return fmt.Errorf("--metrics: %w", err)
		}
		log.Info("metrics listening", zap.String("url", "http://"+ms.Addr().String()+metrics.Path))
	}
	log.Info("dht node started", zap.Stringer("id", n.ID()), zap.Stringer("addr", n.Addr()), zap.String("addr6", addr6Text(n)),
		zap.Strings("bootstrap", cfg.Bootstrap), zap.String("state_dir", cfg.StateDir))
	pm := f.startPortMapping(n.Addr().Addr(), 0, n.Addr().Port(), n, nil, log)
	defer closePortMapping(pm, log)

	go func() {
		if got, err := n.Bootstrap(ctx); err != nil {
			log.Warn("bootstrap failed; retrying in the background", zap.Error(err))
		} else {
			log.Info("bootstrapped", zap.Int("nodes", got))
		}
	}()

	var tick <-chan time.Time
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	var last dht.Stats
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			if ms != nil {
				ms.Close()
			}
			if err := n.Close(); err != nil {
				log.Warn("close", zap.Error(err))
			}
			return nil
		case now := <-tick:
			s, err := n.Stats(ctx)
			if err != nil {
				continue
			}
			secs := now.Sub(lastAt).Seconds()
			var nodes6, good6, buckets6 int
			if s.V6 != nil {
				nodes6, good6, buckets6 = s.V6.Nodes, s.V6.Good, s.V6.Buckets
				// Both sockets' traffic: the rates are the node's.
				s.Transport.QueriesIn += s.V6.Transport.QueriesIn
				s.Transport.QueriesOut += s.V6.Transport.QueriesOut
				s.Transport.Malformed += s.V6.Transport.Malformed
				s.Transport.Oversized += s.V6.Transport.Oversized
				s.Transport.Unmatched += s.V6.Transport.Unmatched
			}
			log.Info("status",
				zap.Int("nodes", s.Nodes), zap.Int("nodes6", nodes6), zap.Int("good", s.Good), zap.Int("good6", good6),
				zap.Int("buckets", s.Buckets), zap.Int("buckets6", buckets6),
				zap.String("queries_in_per_s", rate(s.Transport.QueriesIn-last.Transport.QueriesIn, secs)),
				zap.String("queries_out_per_s", rate(s.Transport.QueriesOut-last.Transport.QueriesOut, secs)),
				zap.Int("infohashes", s.InfoHashes), zap.Int("peers", s.Peers),
				zap.Uint64("dropped", s.Transport.Malformed+s.Transport.Oversized+s.Transport.Unmatched),
				zap.String("mapped", mappedText(portMapStatus(pm))))
			last, lastAt = s, now
		}
	}
}

func rate(n uint64, secs float64) string {
	if secs <= 0 {
		return "0"
	}
	return formatFloat(float64(n) / secs)
}

// addr6Text is the IPv6 DHT socket's address beside the IPv4 one, for the
// log: "none" when there is none (the node runs one socket, its Addr).
func addr6Text(n *dht.Node) string {
	if a := n.Addr6(); a.IsValid() {
		return a.String()
	}
	return noSocket
}
