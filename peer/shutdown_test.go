package peer

import (
	"context"
	"net"
	"testing"
	"time"

	"node/metadata"
	"node/peer/wire"
)

// Connections whose arrival is still queued when the torrent ends were
// never seen by the loop, so the loop's shutdown cannot close them; the
// torrent's end must close them all the same, or Run waits on their
// readers for as long as the peers keep silent (libtorrent keeps an idle
// connection for minutes).
func TestRunEndsWithQueuedConnections(t *testing.T) {
	tor, err := New(Config{InfoHash: metadata.InfoHash{1}})
	if err != nil {
		t.Fatal(err)
	}
	var conns []*conn
	for range 20 {
		ours, theirs := net.Pipe()
		t.Cleanup(func() { theirs.Close() }) // open and silent until the test ends
		c := newConn(ours, wire.Handshake{}, false, wire.MaxMessageLen(0))
		tor.startConn(c) // queued: no loop runs yet
		conns = append(conns, c)
	}
	// The loop starts with the torrent already over: it returns as soon
	// as it sees that, with most of the arrivals still queued.
	tor.cancel()
	done := make(chan error, 1)
	go func() { done <- tor.Run(context.Background()) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return: a queued connection was left open")
	}
	for i, c := range conns {
		select {
		case <-c.closed:
		default:
			t.Fatalf("connection %d still open after Run returned", i)
		}
	}
}
