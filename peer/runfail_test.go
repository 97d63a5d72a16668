package peer

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"node/metadata"
)

// Subnet 127.0.64.x belongs to these tests.

// A torrent whose files cannot be opened fails at once, before its loop;
// its listeners are closed all the same: a Mux's virtual listener
// unregisters its info-hash, so the next session can listen again, and
// a real listener gives up its port.
func TestRunFailureClosesListeners(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"a.bin": 100_000}, 32<<10)
	// A regular file where the download directory should be: Open fails.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newMux(t, "127.0.64.1", EncryptOff)
	vln, err := m.Listener(mi.Info.InfoHash)
	if err != nil {
		t.Fatal(err)
	}
	tcp := listen4(t, "127.0.64.2")
	defer tcp.Close()
	tor, err := New(Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: filepath.Join(notDir, "sub"),
		Listener: vln, Listeners: []net.Listener{tcp}, Dial: refuseDial, Encryption: EncryptOff})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tor.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v, want an early failure opening the files", err)
	}
	ln, err := m.Listener(mi.Info.InfoHash)
	if err != nil {
		t.Fatalf("the failed session still holds its Mux slot: %v", err)
	}
	ln.Close()
	if _, err := tcp.Accept(); err == nil {
		t.Fatal("the failed session's TCP listener still accepts")
	}
}

// A torrent stopped while it checks its existing data (4 GiB of a sparse
// file here, minutes on a slow disk) stops between two pieces, and Run
// returns no error: a stop is not a failure.
func TestRunStopsWhileChecking(t *testing.T) {
	dir := t.TempDir()
	const size, plen = 4 << 30, 4 << 20
	f, err := os.Create(filepath.Join(dir, "zero.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Skipf("no sparse file of %d bytes here: %v", size, err)
	}
	f.Close()
	sum := sha1.Sum(make([]byte, plen))
	pieces := bytes.Repeat(sum[:], size/plen)
	mi, err := metadata.ParseMetaInfo(fmt.Appendf(nil, "d4:infod6:lengthi%de4:name8:zero.bin12:piece lengthi%de6:pieces%d:%see",
		size, plen, len(pieces), pieces))
	if err != nil {
		t.Fatal(err)
	}
	tor, err := New(Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dir, Dial: refuseDial, Encryption: EncryptOff})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tor.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run stopped while checking = %v, want nil", err)
		}
	case <-time.After(10 * time.Second): // a bound on a hang: the whole check takes longer
		<-done
		t.Fatal("Run went on checking after its context was done")
	}
	select {
	case <-tor.Metadata():
		t.Fatal("the check finished despite the stop")
	default:
	}
}
