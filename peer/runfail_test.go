package peer

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
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
