package main

// The anacrolix server child: an anacrolix/dht/v2 server with unlimited
// send rate (dhttest.Configure), bootstrapped from the given loopback
// address, printing its table size once a second until stdin closes.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	adht "github.com/anacrolix/dht/v2"

	"node/internal/dhttest"
)

func runAnacrolixServer(listen, boot string) error {
	pc, err := net.ListenPacket("udp4", listen)
	if err != nil {
		return err
	}
	bootAP, err := netip.ParseAddrPort(boot)
	if err != nil {
		return err
	}
	cfg := adht.NewDefaultServerConfig()
	cfg.Conn = pc
	dhttest.Configure(cfg, func() []netip.AddrPort { return []netip.AddrPort{bootAP} })
	s, err := adht.NewServer(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	go func() {
		if _, err := s.Bootstrap(); err != nil {
			fmt.Fprintln(os.Stderr, "anacrolix bootstrap:", err)
		}
	}()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		close(done)
	}()
	out := json.NewEncoder(os.Stdout)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-t.C:
			st := s.Stats()
			_ = out.Encode(map[string]int{"nodes": st.Nodes, "good": st.GoodNodes})
		}
	}
}
