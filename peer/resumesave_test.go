package peer

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"node/internal/testutil"
	"node/storage"
)

// A periodic resume save that fails, off the loop, leaves the torrent
// dirty: the saves go on failing at every tick while the record cannot
// be written, and once it can, the record holds every verified piece,
// though no piece came after the failures. Here the record cannot be
// written while .node is a regular file; the seeder is stopped first,
// so that only the failed saves can keep the torrent dirty.
func TestResumeSaveFailureLeavesDirty(t *testing.T) {
	src := t.TempDir()
	mi := makeContent(t, src, "content", map[string]int{"f": 32 * 32 << 10}, 32<<10)
	lnA := listenTCP(t, "127.0.214.1:0")
	ctxA, stopA := context.WithCancel(context.Background())
	a, err := New(Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: src, Listener: lnA, NoDownload: true, MaxUploadRate: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	doneA := make(chan struct{})
	go func() { _ = a.Run(ctxA); close(doneA) }()
	t.Cleanup(func() { stopA(); <-doneA })

	dir := t.TempDir()
	core, logs := observer.New(zapcore.WarnLevel)
	failures := func() int { return logs.FilterMessage("saving resume data").Len() }
	ctxB, stopB := context.WithCancel(context.Background())
	b, err := New(Config{InfoHash: mi.Info.InfoHash, Info: mi.Info, Dir: dir, Peers: addrs(lnA),
		Dial: boundDial("127.0.214.2"), Logger: zap.New(core),
		tickEvery: 20 * time.Millisecond, resumeEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(ctxB) }()
	t.Cleanup(func() { stopB(); <-doneB })

	// Once the first write has made the record, it can no longer be saved.
	nodeDir := filepath.Join(dir, ".node")
	record := filepath.Join(nodeDir, hex.EncodeToString(mi.Info.InfoHash[:])+".resume")
	testutil.WaitFor(t, 10*time.Second, "the first resume record", func() bool {
		_, err := os.Stat(record)
		return err == nil
	})
	if err := os.Rename(nodeDir, nodeDir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nodeDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "a piece verified and a save failed", func() bool {
		return stats(t, b).Verified > 0 && failures() > 0
	})
	stopA()
	<-doneA
	testutil.WaitFor(t, 10*time.Second, "the seeder gone", func() bool { return stats(t, b).Peers == 0 })
	// No piece can come now: only a failed save keeps it dirty, and so
	// saving, at every tick.
	n := failures()
	testutil.WaitFor(t, 10*time.Second, "the saves going on failing", func() bool { return failures() >= n+2 })

	verified := stats(t, b).Have
	if err := os.Remove(nodeDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(nodeDir+".away", nodeDir); err != nil {
		t.Fatal(err)
	}
	stopB()
	if err := <-doneB; err != nil && err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
	doneB <- nil // for the cleanup

	st, err := storage.Open(dir, mi.Info)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, fast, err := st.Recover()
	if err != nil || !fast || got != verified {
		t.Fatalf("the record gave %d pieces (from the record: %v, %v), want the %d verified", got, fast, err, verified)
	}
}
