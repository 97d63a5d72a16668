package peer

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"node/dht"
	"node/internal/testutil"
	"node/metadata"
)

// testFiles is a multi-file layout with nested folders, an empty file and
// sizes that are not multiples of any piece length.
var testFiles = map[string]int{
	"a.bin":            300_001,
	"sub/b.bin":        1_048_577,
	"sub/deeper/c.txt": 12_345,
	"empty":            0,
	"sub/z.bin":        65_536*3 + 7,
}

// testHandshakeTimeout replaces handshakeTimeout (Config.hsTimeout) in
// tests that wait for silent peers to be given up on: still far beyond a
// loopback handshake under -race, a third of the default's wait.
const testHandshakeTimeout = 3 * time.Second

// makeContent writes testFiles under dir/name with seeded random bytes and
// returns the .torrent for it.
func makeContent(t testing.TB, dir, name string, files map[string]int, pieceLen int64) *metadata.MetaInfo {
	t.Helper()
	testutil.WriteFiles(t, filepath.Join(dir, name), uint64(len(files)), files)
	mi, err := metadata.Create(filepath.Join(dir, name), metadata.CreateOptions{PieceLength: pieceLen})
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

// sameTree fails unless every regular file under a/name equals b/name's.
func sameTree(t testing.TB, a, b, name string) {
	t.Helper()
	err := filepath.Walk(filepath.Join(a, name), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// endpoint is a peer's TCP listener and DHT node on one loopback address.
type endpoint struct {
	ln   net.Listener
	node *dht.Node
}

func newEndpoint(t testing.TB, ip string, boot *dht.Node) endpoint {
	t.Helper()
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := dht.New(dht.Config{Conn: pc, Bootstrap: []string{boot.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	return endpoint{ln: ln, node: n}
}

// runTorrent runs a torrent until the test ends and returns it.
func runTorrent(t testing.TB, cfg Config) (*Torrent, <-chan error) {
	t.Helper()
	tor, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		done <- tor.Run(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	return tor, done
}

func waitDone(t testing.TB, tor *Torrent, d time.Duration) {
	t.Helper()
	select {
	case <-tor.Done():
	case <-time.After(d):
		s, _ := tor.Stats(context.Background())
		t.Fatalf("not complete after %v: %+v", d, s)
	}
}

func bencodeMarshal(v any) ([]byte, error) { return bencode.Marshal(v) }

func addrs(lns ...net.Listener) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ln := range lns {
		out = append(out, addrOf(ln.Addr()))
	}
	return out
}

// copyTree copies the regular files under from/name to to/name.
func copyTree(t testing.TB, from, to, name string) {
	t.Helper()
	err := filepath.Walk(filepath.Join(from, name), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
