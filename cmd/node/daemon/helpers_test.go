package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"node/cmd/node/api"
	"node/dht"
	tu "node/internal/testutil"
	"node/internal/testutil/dhtnet"
	"node/internal/testutil/swarmtest"
	"node/metadata"
	"node/peer"
	"node/routing"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// harness is a daemon on 127.0.<subnet>.100 with its own DHT node joined
// to a small loopback DHT network.
type harness struct {
	t      testing.TB
	d      *Daemon
	node   *dht.Node
	boot   string
	subnet int
	state  string
	dir    string
	cancel context.CancelFunc
	ran    chan struct{}

	mu    sync.Mutex
	addrs map[metadata.InfoHash]netip.AddrPort // each torrent's latest listener
}

type harnessOpts struct {
	noState bool
	mod     func(*Config)
	boot    string // a network already started; empty: start one
}

func newHarness(t testing.TB, subnet int, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, subnet: subnet, boot: o.boot, dir: t.TempDir(), addrs: make(map[metadata.InfoHash]netip.AddrPort)}
	if h.boot == "" {
		nodes := dhtnet.Start(t, subnet, 4)
		h.boot = nodes[0].Addr().String()
	}
	if !o.noState {
		h.state = t.TempDir()
	}
	h.start(o.mod)
	return h
}

// start starts the daemon (again, after stopDaemon: same state).
func (h *harness) start(mod func(*Config)) {
	t := h.t
	t.Helper()
	ip := fmt.Sprintf("127.0.%d.100", h.subnet)
	pc, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	node, err := dht.New(dht.Config{Conn: pc, Bootstrap: []string{h.boot}, StateDir: h.state})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := node.Bootstrap(ctx); err != nil {
		node.Close()
		t.Fatal(err)
	}
	cfg := Config{
		StateDir: h.state, Dir: h.dir, DHT: node, Encryption: peer.EncryptOff, Logger: zap.NewNop(),
		Listen: func(ih metadata.InfoHash) (net.Listener, error) {
			ln, err := net.Listen("tcp4", ip+":0")
			if err == nil {
				h.mu.Lock()
				h.addrs[ih] = ln.Addr().(*net.TCPAddr).AddrPort()
				h.mu.Unlock()
			}
			return ln, err
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	h.d, h.node, h.cancel, h.ran = d, node, stop, make(chan struct{})
	go func() {
		defer close(h.ran)
		_ = d.Run(runCtx)
	}()
	t.Cleanup(h.stopDaemon)
	tu.WaitFor(t, 5*time.Second, "Run to start", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.runCtx != nil
	})
}

// stopDaemon stops the daemon and its node, as a clean shutdown does.
func (h *harness) stopDaemon() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.ran
	h.node.Close()
	h.cancel = nil
}

func (h *harness) addr(ih metadata.InfoHash) netip.AddrPort {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addrs[ih]
}

func (h *harness) get(ih metadata.InfoHash) api.TorrentDetail {
	h.t.Helper()
	td, err := h.d.Get(context.Background(), ih)
	if err != nil {
		h.t.Fatal(err)
	}
	return td
}

func (h *harness) waitState(ih metadata.InfoHash, d time.Duration, states ...string) api.TorrentDetail {
	h.t.Helper()
	var td api.TorrentDetail
	tu.WaitFor(h.t, d, fmt.Sprintf("state in %v", states), func() bool {
		td = h.get(ih)
		for _, s := range states {
			if td.State == s {
				return true
			}
		}
		return false
	})
	return td
}

// content makes a torrent of seeded random files under root/name.
func content(t *testing.T, root, name string, seed uint64, files map[string]int, pieceLen int64) *metadata.MetaInfo {
	t.Helper()
	tu.WriteFiles(t, filepath.Join(root, name), seed, files)
	mi, err := metadata.Create(filepath.Join(root, name), metadata.CreateOptions{PieceLength: pieceLen})
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

func torrentBytes(t *testing.T, mi *metadata.MetaInfo) []byte {
	t.Helper()
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runTorrent runs a peer.Torrent until the test ends.
func runTorrent(t *testing.T, cfg peer.Config) *peer.Torrent { return swarmtest.Run(t, cfg) }

// seeder serves mi's content from dir on 127.0.<subnet>.50, announced
// through a DHT node of its own joined at boot.
func seeder(t *testing.T, subnet int, boot string, mi *metadata.MetaInfo, dir string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.%d.50:0", subnet))
	if err != nil {
		t.Fatal(err)
	}
	swarmtest.Seed(t, boot, peer.Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dir, Listener: ln, Encryption: peer.EncryptOff, NoDownload: true})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// announced waits until a get_peers lookup through the network finds
// want for ih: then a lookup of the daemon's finds it too.
func announced(t *testing.T, n *dht.Node, ih metadata.InfoHash, want netip.AddrPort) {
	t.Helper()
	tu.WaitFor(t, 30*time.Second, "the seeder's announce", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ch := make(chan netip.AddrPort, 64)
		_, _ = n.GetPeers(ctx, routing.ID(ih), ch)
		close(ch)
		for a := range ch {
			if a == want {
				return true
			}
		}
		return false
	})
}
