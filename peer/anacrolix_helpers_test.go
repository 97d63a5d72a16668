package peer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	astorage "github.com/anacrolix/torrent/storage"

	"node/dht"
	"node/internal/peertest"
	"node/metadata"
)

// newAnacrolixClient starts an anacrolix/torrent client listening (TCP,
// and UDP for its DHT server) on ip:ephemeral, storing data under dir, its
// DHT starting from our nodes only. Nothing in it may reach beyond
// loopback: no trackers, web seeds, WebTorrent, UPnP/NAT-PMP, public
// bootstrap routers or IPv6.
func newAnacrolixClient(t testing.TB, ip, dir string, seed bool, nodes []*dht.Node) *torrent.Client {
	t.Helper()
	var boot []netip.AddrPort
	for _, n := range nodes {
		boot = append(boot, n.Addr())
	}
	cfg, err := peertest.ClientConfig(ip, dir, seed, boot)
	if err != nil {
		t.Fatal(err)
	}
	// anacrolix serves requests from a 1 MiB budget per connection and,
	// asked for more, can stall for good (its limiter grants in arrival
	// order while its server waits in map order). Its default is kept
	// here on purpose: our pipeline (maxPipeline = 64 blocks, 1 MiB) must
	// work against anacrolix peers as users meet them.
	cfg.DefaultStorage = plainStorage{dir: dir}
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		<-cl.Closed()
		waitAnacrolixGone(5 * time.Second)
	})
	for _, a := range cl.ListenAddrs() {
		if ap := addrOf(a); ap.Addr() != netip.MustParseAddr(ip) {
			t.Fatalf("anacrolix client listens on %v, not %s", a, ip)
		}
	}
	return cl
}

// anacrolixPeerAddr is the address the client accepts peers on.
func anacrolixPeerAddr(t testing.TB, cl *torrent.Client, ip string) netip.AddrPort {
	t.Helper()
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(cl.LocalPort()))
}

// toAnacrolix converts our .torrent to anacrolix's.
func toAnacrolix(t testing.TB, mi *metadata.MetaInfo) *metainfo.MetaInfo {
	t.Helper()
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ami, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := ami.HashInfoBytes(); got != metainfo.Hash(mi.Info.InfoHash) {
		t.Fatalf("anacrolix hashes our info to %v, we to %v", got, mi.Info.InfoHash)
	}
	return ami
}

// waitAnnounced fails the test unless want shows up among the peers our
// DHT stores for ih within d.
func waitAnnounced(t testing.TB, n *dht.Node, ih metadata.InfoHash, want netip.AddrPort, d time.Duration) {
	t.Helper()
	if _, err := peertest.WaitAnnounced(context.Background(), n, ih, want, d); err != nil {
		t.Fatal(err)
	}
}

// waitAnacrolixComplete waits until tr has every byte, verified.
func waitAnacrolixComplete(t testing.TB, tr *torrent.Torrent, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if tr.Info() != nil && tr.Complete().Bool() && tr.BytesMissing() == 0 {
			return
		}
		if time.Now().After(deadline) {
			var missing int64 = -1
			if tr.Info() != nil {
				missing = tr.BytesMissing()
			}
			t.Fatalf("anacrolix torrent not complete after %v: %d bytes missing, pieces %v, stats %+v", d, missing, tr.PieceStateRuns(), tr.Stats().ConnStats)
		}
		select {
		case <-tr.Complete().On():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// boundDial dials from ip, so that the other side sees the address we
// listen on (a plain dial on loopback leaves from 127.0.0.1); anacrolix
// pings the DHT port we send it at the address the connection came from.
func boundDial(ip string) func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
	return func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return d.DialContext(ctx, "tcp4", a.String())
	}
}

// refuseDial is a Config.Dial for a torrent that must only be dialled.
func refuseDial(context.Context, netip.AddrPort) (net.Conn, error) {
	return nil, errors.New("this test's torrent does not dial")
}

// plainStorage is anacrolix storage on plain files (ReadAt/WriteAt) under
// dir/<name>/<path>, laid out like ours. anacrolix v1.59.1's file storage
// (storage.NewFile*) maps files with mmap by default, which fails with
// EINVAL on a zero-length file ("writing received chunk: invalid
// argument", after which the client disables downloading for good) and in
// msync of extents that do not start on a page boundary.
// With complete, every piece is taken as verified: a seeder of data it
// need not hash first.
type plainStorage struct {
	dir      string
	complete bool
}

func (s plainStorage) OpenTorrent(_ context.Context, info *metainfo.Info, _ metainfo.Hash) (astorage.TorrentImpl, error) {
	pt := &plainTorrent{done: make(map[int]bool), all: s.complete}
	var off int64
	for _, fi := range info.UpvertedFiles() {
		parts := append([]string{s.dir, info.BestName()}, fi.BestPath()...)
		if !info.IsDir() {
			parts = parts[:2]
		}
		name := filepath.Join(parts...)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			pt.close()
			return astorage.TorrentImpl{}, err
		}
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			pt.close()
			return astorage.TorrentImpl{}, err
		}
		pt.files = append(pt.files, plainFile{f: f, off: off, n: fi.Length})
		off += fi.Length
	}
	return astorage.TorrentImpl{
		Piece: func(p metainfo.Piece) astorage.PieceImpl {
			return plainPiece{t: pt, i: p.Index(), off: p.Offset(), n: p.Length()}
		},
		Close: pt.close,
	}, nil
}

type plainFile struct {
	f      *os.File
	off, n int64 // extent in the torrent
}

type plainTorrent struct {
	files []plainFile
	mu    sync.Mutex
	done  map[int]bool
	all   bool
}

func (pt *plainTorrent) close() error {
	for _, f := range pt.files {
		f.f.Close()
	}
	return nil
}

// io runs op on each file's share of [off, off+len(b)) in the torrent.
func (pt *plainTorrent) io(b []byte, off int64, op func(f *os.File, b []byte, off int64) (int, error)) (int, error) {
	done := 0
	for _, f := range pt.files {
		if len(b) == 0 {
			break
		}
		if off >= f.off+f.n || f.n == 0 {
			continue
		}
		k := min(int64(len(b)), f.off+f.n-off)
		n, err := op(f.f, b[:k], off-f.off)
		done += n
		if err != nil {
			return done, err
		}
		b, off = b[k:], off+k
	}
	if len(b) > 0 {
		return done, io.EOF
	}
	return done, nil
}

type plainPiece struct {
	t      *plainTorrent
	i      int
	off, n int64
}

func (p plainPiece) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.n {
		return 0, io.EOF
	}
	short := int64(len(b)) > p.n-off
	b = b[:min(int64(len(b)), p.n-off)]
	n, err := p.t.io(b, p.off+off, (*os.File).ReadAt)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (p plainPiece) WriteAt(b []byte, off int64) (int, error) {
	return p.t.io(b, p.off+off, (*os.File).WriteAt)
}

func (p plainPiece) MarkComplete() error    { return p.mark(true) }
func (p plainPiece) MarkNotComplete() error { return p.mark(false) }

func (p plainPiece) mark(v bool) error {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	p.t.done[p.i] = v
	return nil
}

func (p plainPiece) Completion() astorage.Completion {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	return astorage.Completion{Ok: true, Complete: p.t.all || p.t.done[p.i]}
}

// waitAnacrolixGone waits, up to d, for the goroutines a closed anacrolix
// client leaves behind (queries finishing their last resend delay, a
// bootstrap traversal winding down) to end, so that goleak at the end of
// the package does not see them.
func waitAnacrolixGone(d time.Duration) {
	deadline := time.Now().Add(d)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		if !bytes.Contains(buf, []byte("github.com/anacrolix/")) {
			return
		}
		buf = buf[:cap(buf)]
		time.Sleep(20 * time.Millisecond)
	}
}
