package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	astorage "github.com/anacrolix/torrent/storage"

	"node/internal/peertest"
)

// fileIOEnv selects anacrolix's file storage I/O. Its default is mmap,
// which would make every RSS figure of the anacrolix side count mapped
// page cache; "classic" is pread/pwrite, like ours. It is read in an init
// function, so main re-executes the program with it set.
const fileIOEnv = "TORRENT_STORAGE_DEFAULT_FILE_IO"

// seederAllocPerConn is the seeder's MaxAllocPeerRequestDataPerConn.
// anacrolix reserves each request's block from this per-connection budget
// (default 1 MiB) when the request arrives, and its request server can
// then wait for good on a reservation that is never granted (see
// peer/anacrolix_helpers_test.go). With the default, or even 4 MiB, an
// anacrolix leecher (which may pipeline up to the seeder's reqq of 1024
// blocks, 16 MiB) stalls on loopback after a few MiB. Room for a full
// reqq of 16 KiB blocks makes the stall impossible, for both leechers.
const seederAllocPerConn = 1024 * 16 << 10

// newAnacrolixClient starts an anacrolix/torrent client listening (TCP, and
// UDP for its DHT server) on ip, storing data in plain files under dir, its
// DHT knowing only boot. Nothing in it may reach beyond loopback: no
// trackers, web seeds, WebTorrent, uTP, UPnP/NAT-PMP, public bootstrap
// routers or IPv6. Callbacks, if given, are the client's.
func newAnacrolixClient(ip, dir string, seed bool, boot []netip.AddrPort, callbacks *torrent.Callbacks) (*torrent.Client, error) {
	cfg, err := peertest.ClientConfig(ip, dir, seed, boot)
	if err != nil {
		return nil, err
	}
	if callbacks != nil {
		cfg.Callbacks = *callbacks
	}
	if seed {
		cfg.MaxAllocPeerRequestDataPerConn = seederAllocPerConn
	}
	// Plain files, no part files (they would rename the seeder's source
	// files), completion kept in memory (nothing but the data written).
	cfg.DefaultStorage = astorage.NewFileOpts(astorage.NewFileClientOpts{
		ClientBaseDir:   dir,
		UsePartFiles:    g.Some(false),
		PieceCompletion: astorage.NewMapPieceCompletion(),
		Logger:          slog.New(slog.DiscardHandler),
	})
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	for _, a := range cl.ListenAddrs() {
		if ap := addrPortOf(a); ap.Addr() != netip.MustParseAddr(ip) {
			cl.Close()
			return nil, fmt.Errorf("anacrolix client listens on %v, not %s", a, ip)
		}
	}
	return cl, nil
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// waitComplete waits until tr has every byte, verified.
func waitComplete(ctx context.Context, tr *torrent.Torrent) error {
	for {
		if tr.Info() != nil && tr.BytesMissing() == 0 && tr.Complete().Bool() {
			return nil
		}
		select {
		case <-ctx.Done():
			var missing int64 = -1
			if tr.Info() != nil {
				missing = tr.BytesMissing()
			}
			return fmt.Errorf("not complete: %d bytes missing: %w", missing, ctx.Err())
		case <-tr.Complete().On():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runLeech is the hidden subcommand "leech-anacrolix": an anacrolix client
// fetching a magnet link through our DHT, printing JSON events like
// node fetch --json does, then exiting. Its "complete" event also counts
// the peers (by peer ID) that delivered useful data ("peers",
// "useful_by_peer_id").
func runLeech(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("leech-anacrolix", flag.ContinueOnError)
	mag := fs.String("magnet", "", "magnet link")
	dir := fs.String("dir", "", "download directory")
	listen := fs.String("listen", "", "loopback IP to listen on")
	bootList := fs.String("boot", "", "comma-separated host:port DHT nodes (loopback)")
	timeout := fs.Duration("timeout", 170*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mag == "" || *dir == "" || *listen == "" || *bootList == "" {
		return errors.New("leech-anacrolix: -magnet, -dir, -listen and -boot are required")
	}
	var boot []netip.AddrPort
	for _, s := range strings.Split(*bootList, ",") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-boot: %w", err)
		}
		boot = append(boot, ap)
	}
	start := time.Now()
	emit := func(kind string, fields map[string]any) {
		fields["event"] = kind
		fields["after_ms"] = time.Since(start).Milliseconds()
		b, _ := json.Marshal(fields)
		fmt.Fprintf(stdout, "%s\n", b)
	}
	// Which peers delivered data, by peer ID: one seeder may have two
	// connections with us (it also dials the leechers it finds in the
	// DHT, from 127.0.0.1), and connections may be gone by the time the
	// download completes.
	var mu sync.Mutex
	ids := map[*torrent.Peer]string{}
	useful := map[string]int64{}
	callbacks := &torrent.Callbacks{
		PeerConnAdded: []func(*torrent.PeerConn){func(pc *torrent.PeerConn) {
			mu.Lock()
			ids[&pc.Peer] = hex.EncodeToString(pc.PeerID[:])
			mu.Unlock()
		}},
		ReceivedUsefulData: []func(torrent.ReceivedUsefulDataEvent){func(ev torrent.ReceivedUsefulDataEvent) {
			mu.Lock()
			id, ok := ids[ev.Peer]
			if !ok {
				id = ev.Peer.RemoteAddr.String()
			}
			useful[id] += int64(len(ev.Message.Piece))
			mu.Unlock()
		}},
	}
	cl, err := newAnacrolixClient(*listen, *dir, false, boot, callbacks)
	if err != nil {
		return err
	}
	defer cl.Close()
	tr, err := cl.AddMagnet(*mag)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	select {
	case <-tr.GotInfo():
	case <-ctx.Done():
		return fmt.Errorf("no metadata after %v", *timeout)
	}
	emit("metadata", map[string]any{"bytes": tr.Info().TotalLength(), "pieces": tr.NumPieces()})
	tr.DownloadAll()
	err = waitComplete(ctx, tr)
	if err != nil {
		st := tr.Stats()
		return fmt.Errorf("%w (peers: %d active of %d, read %d bytes, useful %d; pieces %v)", err,
			st.ActivePeers, st.TotalPeers, st.ConnStats.BytesReadData.Int64(), st.ConnStats.BytesReadUsefulData.Int64(), tr.PieceStateRuns())
	}
	st := tr.Stats()
	mu.Lock()
	byID := maps.Clone(useful)
	mu.Unlock()
	emit("complete", map[string]any{"bytes": tr.Info().TotalLength(),
		"downloaded": st.ConnStats.BytesReadData.Int64(), "useful": st.ConnStats.BytesReadUsefulData.Int64(),
		"wasted":     st.ConnStats.BytesReadData.Int64() - st.ConnStats.BytesReadUsefulData.Int64(),
		"hash_fails": st.PiecesDirtiedBad.Int64(),
		"peers":      len(byID), "useful_by_peer_id": byID})
	return nil
}
